package schedule

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"time"

	"github.com/echo-backup/echo-backup/store"
)

// PingEnv gives a run the ping URL in place of the one install kept in the backup folder (and
// is how entries from before that carried it).
const PingEnv = "ECHOBACKUP_PING_URL"

// Kind is where a project's schedule lives.
type Kind string

const (
	Crontab Kind = "crontab"
	Systemd Kind = "systemd"
)

// InstallOptions say when the job runs and how.
type InstallOptions struct {
	Expr    Expr
	Job     Job  // BuildJob's, for the project as install loaded it
	Systemd bool // a systemd user timer instead of a crontab line
	// Warn is told of a housekeeping failure that does not fail the install; nil: nothing.
	Warn func(string)
}

// Installed says what Install did.
type Installed struct {
	Kind   Kind
	Unit   string  // the systemd timer's name
	Others []Entry // crontab entries of projects of the same name in other folders: they stay
}

// Install adds or replaces the project's one schedule: a crontab line, or a systemd user timer.
// Installing one kind removes the other, and a replaced entry's ping file, when it lived in
// another backup folder, goes. ErrNoCrontab comes back as it is: the user has to install cron.
func Install(ctx context.Context, o InstallOptions) (*Installed, error) {
	j := o.Job
	if o.Systemd {
		return installTimer(ctx, o.Expr, j)
	}
	// One schedule per project: a timer from an earlier install --systemd goes.
	if _, err := RemoveTimer(ctx, j.Project, j.Folder); err != nil {
		return nil, fmt.Errorf("scheduling project %q: %w", j.Project, err)
	}
	line, err := Line(o.Expr, j)
	if err != nil {
		return nil, err
	}
	text, _, err := ReadCrontab(ctx)
	if errors.Is(err, ErrNoCrontab) {
		return nil, err
	}
	if err != nil {
		return nil, fmt.Errorf("scheduling project %q: %w", j.Project, err)
	}
	old, replaced := FindIn(text, j.Project, j.Folder)
	if updated := Put(text, j.Project, j.Folder, line); updated != text {
		if err := WriteCrontab(ctx, updated); err != nil {
			return nil, fmt.Errorf("scheduling project %q: %w", j.Project, err)
		}
	}
	if replaced && old.Dir != "" && old.Dir != j.Dir {
		forgetPing(old.Dir, o.Warn)
	}
	return &Installed{Kind: Crontab, Others: Others(text, j.Project, j.Folder)}, nil
}

func installTimer(ctx context.Context, expr Expr, j Job) (*Installed, error) {
	unit, err := InstallTimer(ctx, expr, j)
	if err != nil {
		return nil, fmt.Errorf("scheduling project %q: %w", j.Project, err)
	}
	// One schedule per project: a crontab entry from an earlier install goes.
	if text, _, err := ReadCrontab(ctx); err == nil {
		if updated, found := Delete(text, j.Project, j.Folder); found {
			if err := WriteCrontab(ctx, updated); err != nil {
				return nil, fmt.Errorf("scheduling project %q: %w", j.Project, err)
			}
		}
	}
	return &Installed{Kind: Systemd, Unit: unit}, nil
}

// forgetPing removes the ping URL and the repository setting that install kept in a backup
// folder no entry uses now.
func forgetPing(dir string, warn func(string)) {
	if err := SavePing(dir, ""); err != nil && warn != nil {
		warn(err.Error())
	}
	if err := SaveRepo(dir, RepoSetting{}); err != nil && warn != nil {
		warn(err.Error())
	}
}

// Remove takes out the project's crontab line and systemd timer, and their ping files; its
// backups and log stay. It returns what it removed.
func Remove(ctx context.Context, project, folder string, warn func(string)) ([]Entry, error) {
	var removed []Entry
	text, _, err := ReadCrontab(ctx)
	switch {
	case errors.Is(err, ErrNoCrontab):
	case err != nil:
		return nil, fmt.Errorf("removing the schedule of project %q: %w", project, err)
	default:
		if e, found := FindIn(text, project, folder); found {
			updated, _ := Delete(text, project, folder)
			if err := WriteCrontab(ctx, updated); err != nil {
				return nil, fmt.Errorf("removing the schedule of project %q: %w", project, err)
			}
			removed = append(removed, e)
		}
	}
	if e, found := FindTimer(project, folder); found {
		if _, err := RemoveTimer(ctx, project, folder); err != nil {
			return nil, fmt.Errorf("removing the schedule of project %q: %w", project, err)
		}
		removed = append(removed, e)
	}
	for _, e := range removed {
		forgetPing(e.Dir, warn)
	}
	return removed, nil
}

// Find looks for the project's schedule in the crontab, then among the systemd user units;
// nil when it has none.
func Find(ctx context.Context, project, folder string) (*Entry, Kind, error) {
	text, _, err := ReadCrontab(ctx)
	if err != nil && !errors.Is(err, ErrNoCrontab) {
		return nil, "", err
	}
	if e, ok := FindIn(text, project, folder); ok {
		return &e, Crontab, nil
	}
	if e, ok := FindTimer(project, folder); ok {
		return &e, Systemd, nil
	}
	return nil, "", nil
}

// Status is what `schedule status` shows.
type Status struct {
	Project    string       `json:"project"`
	Installed  bool         `json:"installed"`
	Kind       Kind         `json:"kind,omitempty"`
	Schedule   string       `json:"schedule,omitempty"`
	Command    string       `json:"command,omitempty"`
	Ping       string       `json:"ping,omitempty"`
	NextRun    *time.Time   `json:"nextRun,omitempty"`
	CronDaemon bool         `json:"cronDaemon"`
	Dir        string       `json:"dir"`
	Log        string       `json:"log"`
	LastRun    *Run         `json:"lastRun,omitempty"`
	LastBackup *store.Entry `json:"lastBackup,omitempty"`
}

var pingInCommand = regexp.MustCompile(PingEnv + `=('[^']*'|\S+)`)

// ReadStatus gathers the schedule of project in folder, its last run and its last backup.
// dir is the backup folder when no entry names one.
func ReadStatus(ctx context.Context, project, folder, dir string) (*Status, error) {
	st := &Status{Project: project, Dir: dir, CronDaemon: CronRunning()}
	entry, kind, err := Find(ctx, project, folder)
	if err != nil {
		return nil, err
	}
	if entry != nil {
		st.Installed, st.Kind, st.Dir, st.Schedule = true, kind, entry.Dir, entry.Expr.String()
		st.Command = pingInCommand.ReplaceAllString(entry.Command, PingEnv+"=(hidden)")
		if next := entry.Expr.Next(time.Now()); !next.IsZero() {
			st.NextRun = &next
		}
	}
	st.Log = LogPath(st.Dir)
	if st.LastRun, err = ReadLast(st.Dir); err != nil {
		return nil, err
	}
	if entries, err := store.List(st.Dir, project); err == nil && len(entries) > 0 {
		st.LastBackup = &entries[0]
	}
	return st, nil
}

// DockerPath is the docker CLI by absolute path: the one in PATH, else the one running us.
func DockerPath() (string, error) {
	if p, err := exec.LookPath("docker"); err == nil {
		return filepath.Abs(p)
	}
	if p, err := os.Readlink(fmt.Sprintf("/proc/%d/exe", os.Getppid())); err == nil && filepath.Base(p) == "docker" {
		return p, nil
	}
	return "", errors.New("cannot find the docker CLI in PATH")
}

// CronRunning looks for a cron daemon among the processes; false where /proc cannot tell.
func CronRunning() bool {
	comms, _ := filepath.Glob("/proc/[0-9]*/comm")
	for _, c := range comms {
		b, err := os.ReadFile(c)
		if name := strings.TrimSpace(string(b)); err == nil && (name == "cron" || name == "crond") {
			return true
		}
	}
	return false
}

// NextText is when the entry runs next, for install's output.
func NextText(expr Expr) string {
	next := expr.Next(time.Now())
	if next.IsZero() {
		return "never: no such date within five years"
	}
	return next.Format("2006-01-02 15:04 MST")
}
