package schedule

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// A systemd user timer is the alternative to cron where systemd runs: a oneshot service that
// runs the same shell command as the crontab entry, and a persistent timer, so a run missed
// while the machine was off happens at the next boot.

func unitDir() (string, error) {
	if d := os.Getenv("XDG_CONFIG_HOME"); d != "" {
		return filepath.Join(d, "systemd", "user"), nil
	}
	home, err := os.UserHomeDir()
	if err != nil {
		return "", err
	}
	return filepath.Join(home, ".config", "systemd", "user"), nil
}

// UnitName is the timer's base name for a project.
func UnitName(project string) string { return "echobackup-" + project }

// OnCalendar turns the expressions a timer can express plainly (every day at a time, the
// @aliases) into systemd's calendar syntax.
func OnCalendar(e Expr) (string, error) {
	switch e.text {
	case "@hourly", "@daily", "@weekly", "@monthly", "@yearly", "@annually":
		return strings.TrimPrefix(e.text, "@"), nil
	case "@midnight":
		return "daily", nil
	}
	var m, h int
	if n, _ := fmt.Sscanf(e.text, "%d %d * * *", &m, &h); n == 2 && e.text == fmt.Sprintf("%d %d * * *", m, h) {
		return fmt.Sprintf("*-*-* %02d:%02d:00", h, m), nil
	}
	return "", fmt.Errorf("a systemd timer takes --at HH:MM or an @alias here, not %q: use cron for other expressions", e.text)
}

// systemdQuote makes s one word of an ExecStart= line that systemd passes on unchanged.
func systemdQuote(s string) string {
	r := strings.NewReplacer(`\`, `\\`, `"`, `\"`, "%", "%%", "$", "$$")
	return `"` + r.Replace(s) + `"`
}

// InstallTimer writes the service and timer units and enables the timer.
func InstallTimer(ctx context.Context, e Expr, j Job) (string, error) {
	cal, err := OnCalendar(e)
	if err != nil {
		return "", err
	}
	// The unit's name has only the project's: a project of the same name in another folder
	// keeps its timer, and this one uses cron.
	if other, ok := timerOf(j.Project); ok && !other.Is(j.Project, j.Folder) {
		return "", fmt.Errorf("the systemd timer %s.timer belongs to project %s in %s: remove it there first, or leave out --systemd",
			UnitName(j.Project), j.Project, other.Folder)
	}
	if _, err := exec.LookPath("systemctl"); err != nil {
		return "", errors.New("no systemctl: use cron (leave out --systemd)")
	}
	dir, err := unitDir()
	if err != nil {
		return "", err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", err
	}
	meta, err := json.Marshal(struct {
		Job
		Schedule string `json:"schedule"`
	}{j, e.text})
	if err != nil {
		return "", err
	}
	name := UnitName(j.Project)
	service := fmt.Sprintf("%s%s\n[Unit]\nDescription=echo-backup of compose project %s: save, verify, prune\n\n"+
		"[Service]\nType=oneshot\nExecStart=/bin/sh -c %s\n", Marker, meta, j.Project, systemdQuote(ShellCommand(j)))
	timer := fmt.Sprintf("[Unit]\nDescription=Nightly echo-backup of compose project %s\n\n[Timer]\nOnCalendar=%s\n"+
		"Persistent=true\n\n[Install]\nWantedBy=timers.target\n", j.Project, cal)
	units := []string{filepath.Join(dir, name+".service"), filepath.Join(dir, name+".timer")}
	err = os.WriteFile(units[0], []byte(service), 0o644)
	if err == nil {
		err = os.WriteFile(units[1], []byte(timer), 0o644)
	}
	if err == nil {
		err = systemctl(ctx, "daemon-reload")
	}
	if err == nil {
		err = systemctl(ctx, "enable", "--now", name+".timer")
	}
	if err != nil {
		// Units that systemd never took would only mislead status.
		for _, u := range units {
			os.Remove(u)
		}
		return "", err
	}
	return name + ".timer", nil
}

// FindTimer reads the timer of project in folder back from its service unit.
func FindTimer(project, folder string) (Entry, bool) {
	if e, ok := timerOf(project); ok && e.Is(project, folder) {
		return e, true
	}
	return Entry{}, false
}

// timerOf reads the timer of a project of that name, whatever its folder.
func timerOf(project string) (Entry, bool) {
	dir, err := unitDir()
	if err != nil {
		return Entry{}, false
	}
	f, err := os.Open(filepath.Join(dir, UnitName(project)+".service"))
	if err != nil {
		return Entry{}, false
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	if !sc.Scan() || !strings.HasPrefix(sc.Text(), Marker) {
		return Entry{}, false
	}
	var meta struct {
		Job
		Schedule string `json:"schedule"`
	}
	if json.Unmarshal([]byte(strings.TrimPrefix(sc.Text(), Marker)), &meta) != nil {
		return Entry{}, false
	}
	e, err := Parse(meta.Schedule)
	if err != nil {
		return Entry{}, false
	}
	entry := Entry{Expr: e, Project: meta.Project, Folder: meta.Folder, Dir: meta.Dir, Line: f.Name()}
	for sc.Scan() {
		if cmd, ok := strings.CutPrefix(sc.Text(), "ExecStart="); ok {
			entry.Command = cmd
		}
	}
	return entry, true
}

// RemoveTimer stops and deletes the timer of project in folder; found is false when there was
// none.
func RemoveTimer(ctx context.Context, project, folder string) (found bool, err error) {
	dir, err := unitDir()
	if err != nil {
		return false, nil
	}
	name := UnitName(project)
	if _, ok := FindTimer(project, folder); !ok {
		return false, nil
	}
	if err := systemctl(ctx, "disable", "--now", name+".timer"); err != nil {
		return true, err
	}
	for _, u := range []string{name + ".timer", name + ".service"} {
		if err := os.Remove(filepath.Join(dir, u)); err != nil && !errors.Is(err, os.ErrNotExist) {
			return true, err
		}
	}
	return true, systemctl(ctx, "daemon-reload")
}

func systemctl(ctx context.Context, args ...string) error {
	var stderr bytes.Buffer
	cmd := exec.CommandContext(ctx, "systemctl", append([]string{"--user"}, args...)...)
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("systemctl --user %s: %w: %s (a user manager must run: log in, or `loginctl enable-linger`)",
			strings.Join(args, " "), err, strings.TrimSpace(stderr.String()))
	}
	return nil
}
