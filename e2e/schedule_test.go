//go:build e2e

package e2e

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// pingHit is one request the dead-man's-switch server saw.
type pingHit struct{ Method, Path, Body string }

type pingServer struct {
	*httptest.Server
	mu   sync.Mutex
	hits []pingHit
}

func newPingServer(t *testing.T) *pingServer {
	p := &pingServer{}
	p.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		p.mu.Lock()
		p.hits = append(p.hits, pingHit{r.Method, r.URL.Path, string(b)})
		p.mu.Unlock()
	}))
	t.Cleanup(p.Close)
	return p
}

// take returns the hits since the last take.
func (p *pingServer) take() []pingHit {
	p.mu.Lock()
	defer p.mu.Unlock()
	h := p.hits
	p.hits = nil
	return h
}

// saveCrontab remembers the user's crontab and puts it back exactly when the test ends,
// failed or not.
func saveCrontab(t *testing.T) (text string, exists bool) {
	t.Helper()
	if _, err := exec.LookPath("crontab"); err != nil {
		t.Fatal("no crontab command: the schedule tests need cron (scripts/test.sh installs Debian's cron as root)")
	}
	text, exists = readCrontab(t)
	t.Cleanup(func() {
		if now, nowExists := readCrontab(t); now == text && nowExists == exists {
			return
		}
		var out []byte
		var err error
		if exists {
			cmd := exec.Command("crontab", "-")
			cmd.Stdin = strings.NewReader(text)
			out, err = cmd.CombinedOutput()
		} else {
			out, err = exec.Command("crontab", "-r").CombinedOutput()
		}
		if err != nil {
			t.Errorf("COULD NOT RESTORE THE CRONTAB: %v: %s\nits content was:\n%s", err, out, text)
		}
	})
	return text, exists
}

func readCrontab(t *testing.T) (string, bool) {
	t.Helper()
	var stdout, stderr bytes.Buffer
	cmd := exec.Command("crontab", "-l")
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		if strings.Contains(stderr.String(), "no crontab for") {
			return "", false
		}
		t.Fatalf("crontab -l: %v: %s", err, stderr.String())
	}
	return stdout.String(), true
}

func writeCrontab(t *testing.T, text string) {
	t.Helper()
	cmd := exec.Command("crontab", "-")
	cmd.Stdin = strings.NewReader(text)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("crontab -: %v: %s", err, out)
	}
	if now, _ := readCrontab(t); now != text {
		t.Fatalf("crontab -l gives back %q after crontab - of %q", now, text)
	}
}

// ourLines are the crontab's lines that carry echo-backup's marker.
func ourLines(text string) []string {
	var lines []string
	for _, l := range strings.Split(text, "\n") {
		if strings.Contains(l, "# echobackup-schedule ") {
			lines = append(lines, l)
		}
	}
	return lines
}

// cronCommand splits a crontab line as cron does: five time fields, then the command, in
// which \% stands for % (an unescaped % would end the command).
func cronCommand(t *testing.T, line string) (fields []string, command string) {
	t.Helper()
	rest := line
	for i := 0; i < 5; i++ {
		rest = strings.TrimLeft(rest, " \t")
		j := strings.IndexAny(rest, " \t")
		if j < 0 {
			t.Fatalf("crontab line has fewer than 6 fields: %q", line)
		}
		fields, rest = append(fields, rest[:j]), rest[j:]
	}
	if strings.Count(rest, "%") != strings.Count(rest, `\%`) {
		t.Fatalf("the command has an unescaped %%, which cron turns into a newline: %q", rest)
	}
	return fields, strings.TrimSpace(strings.ReplaceAll(rest, `\%`, "%"))
}

// runAsCron runs a crontab command the way cron does: /bin/sh -c with cron's environment and
// nothing else, from /, stdin /dev/null, in a new session without a terminal.
func runAsCron(t *testing.T, command string) (stdout, stderr string, code int, took time.Duration) {
	t.Helper()
	u, err := user.Current()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("setsid", "--wait", "env", "-i", "HOME="+u.HomeDir, "LOGNAME="+u.Username,
		"PATH=/usr/bin:/bin", "SHELL=/bin/sh", "/bin/sh", "-c", command)
	cmd.Dir = "/"
	var o, e bytes.Buffer
	cmd.Stdout, cmd.Stderr = &o, &e
	t0 := time.Now()
	err = cmd.Run()
	took = time.Since(t0)
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatalf("running the cron command: %v", err)
	}
	t.Logf("cron-style run -> exit %d (%s)", code, took.Round(time.Millisecond))
	return o.String(), e.String(), code, took
}

type scheduleStatusJSON struct {
	Installed bool       `json:"installed"`
	Kind      string     `json:"kind"`
	Schedule  string     `json:"schedule"`
	Command   string     `json:"command"`
	Ping      string     `json:"ping"`
	NextRun   *time.Time `json:"nextRun"`
	Log       string     `json:"log"`
	LastRun   *struct {
		OK      bool   `json:"ok"`
		Summary string `json:"summary"`
		Error   string `json:"error"`
		Backup  string `json:"backup"`
	} `json:"lastRun"`
	LastBackup *listEntry `json:"lastBackup"`
}

func (s *Stack) scheduleStatus(t *testing.T) scheduleStatusJSON {
	t.Helper()
	out, errOut, code := s.EchoBackup(append(s.ProjectArgs(), "schedule", "status", "--format", "json")...)
	if code != 0 {
		t.Fatalf("schedule status: exit %d: %s", code, errOut)
	}
	var st scheduleStatusJSON
	if err := json.Unmarshal([]byte(out), &st); err != nil {
		t.Fatalf("status json: %v\n%s", err, out)
	}
	return st
}

// TestScheduleCron: install writes one marked line (twice: still one), with absolute paths
// and the temporary DOCKER_CONFIG; its command, run as cron runs it, saves a verified backup,
// prunes by the policy, pings start and success, and writes the log; a run that finds the
// lock taken does nothing; a failing run pings /fail with the error; status tells all of it;
// save --prune keeps the newest verified backup; remove leaves the crontab exactly as it was.
func TestScheduleCron(t *testing.T) {
	original, _ := saveCrontab(t)
	// Lines that are not ours, which install and remove must leave as they are (31 February
	// never comes).
	before, existed := original+"# not echo-backup's (TestScheduleCron)\nMAILTO=\"\"\n0 0 31 2 * /bin/true 100\\% sure\n", true
	writeCrontab(t, before)
	s := NewStack(t, "custom")
	// cron starts jobs with an empty environment: what the compose files interpolate must be in
	// the project's .env, as on a server where compose runs from cron or at boot.
	envFile, err := os.OpenFile(filepath.Join(s.Dir, ".env"), os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	_, err = envFile.WriteString("ECHOBACKUP_PG_IMAGE=" + pgImage + "\nECHO_MUSIC_DIR=" + s.MusicDir + "\n")
	if cerr := envFile.Close(); err != nil || cerr != nil {
		t.Fatal(err, cerr)
	}
	s.Up()
	manual := s.save(t) // neither pinned nor verified: keep-last 1 lets it go
	ping := newPingServer(t)
	pingURL := ping.URL + "/ping/3f1c-secret-uuid"

	install := append(s.ProjectArgs(), "schedule", "install", "--at", "03:00", "--ping", pingURL,
		"--keep-last", "1", "--keep-daily", "0", "--keep-weekly", "0", "--keep-monthly", "0")
	for i := 0; i < 2; i++ {
		out, errOut, code := s.EchoBackup(install...)
		if code != 0 || !strings.Contains(out, "Scheduled project "+s.Name) {
			t.Fatalf("schedule install: exit %d\n%s%s", code, out, errOut)
		}
	}
	after, _ := readCrontab(t)
	lines := ourLines(after)
	if len(lines) != 1 || strings.Replace(after, lines[0]+"\n", "", 1) != before {
		t.Fatalf("after two installs the crontab is\n%s\n(before:\n%s)", after, before)
	}
	t.Logf("crontab line: %s", lines[0])
	// The ping URL's key is the secret: not in the crontab, which every process list shows
	// while cron's shell runs, but in a file only the user reads.
	if strings.Contains(after, "secret-uuid") {
		t.Errorf("the crontab holds the ping URL: %s", lines[0])
	}
	if fi, err := os.Stat(filepath.Join(s.Dir, "backups", ".schedule.ping")); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("the kept ping URL: %v %v", fi, err)
	}
	r := s.Run(RunOpts{Env: []string{"ECHOBACKUP_PING_URL=" + pingURL}}, "docker",
		append(append([]string{"echobackup"}, s.ProjectArgs()...), "schedule", "run", "--help")...)
	if r.Code != 0 || !strings.Contains(r.Stdout, "--ping") || strings.Contains(r.Stdout+r.Stderr, "secret-uuid") {
		t.Errorf("schedule run --help shows the ping URL from the environment:\n%s", r.Stdout)
	}
	fields, command := cronCommand(t, lines[0])
	if strings.Join(fields, " ") != "0 3 * * *" {
		t.Errorf("schedule fields %v", fields)
	}
	for _, want := range []string{"DOCKER_CONFIG=" + dockerConfig, "--project-directory " + s.Dir,
		filepath.Join(s.Dir, "compose.override.yaml"), filepath.Join(s.Dir, "backups", "schedule.log")} {
		if !strings.Contains(command, want) {
			t.Errorf("the command lacks %q:\n%s", want, command)
		}
	}
	if word := strings.Fields(strings.SplitN(command, " /", 2)[1])[0]; !strings.HasSuffix(word, "docker") {
		t.Errorf("the docker CLI is not called by absolute path: %s", command)
	}

	// A run as cron would start it.
	stdout, stderr, code, _ := runAsCron(t, command)
	logText, _ := os.ReadFile(filepath.Join(s.Dir, "backups", "schedule.log"))
	if code != 0 {
		t.Fatalf("scheduled run: exit %d\nstdout: %s\nstderr: %s\nlog:\n%s", code, stdout, stderr, logText)
	}
	if stdout != "" || stderr != "" {
		t.Errorf("the run wrote outside its log (cron would mail it): %q %q", stdout, stderr)
	}
	if !strings.Contains(string(logText), "started") || !strings.Contains(string(logText), "OK: saved and verified") {
		t.Errorf("log:\n%s", logText)
	}
	if fi, err := os.Stat(filepath.Join(s.Dir, "backups", "schedule.log")); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("schedule.log: %v %v", fi, err)
	}
	entries := s.list(t)
	if len(entries) != 1 || entries[0].Path == manual.Path || entries[0].Verified == nil || !entries[0].Verified.OK {
		t.Fatalf("after the scheduled run list = %+v", entries)
	}
	scheduled := entries[0]
	if _, err := os.Stat(manual.Path); err == nil {
		t.Errorf("prune (keep-last 1) left %s", manual.Path)
	}
	hits := ping.take()
	if len(hits) != 2 || hits[0] != (pingHit{"GET", "/ping/3f1c-secret-uuid/start", ""}) ||
		hits[1].Method != "POST" || hits[1].Path != "/ping/3f1c-secret-uuid" || !strings.Contains(hits[1].Body, scheduled.Name) {
		t.Errorf("pings %+v", hits)
	}

	st := s.scheduleStatus(t)
	now := time.Now()
	next := time.Date(now.Year(), now.Month(), now.Day(), 3, 0, 0, 0, time.Local)
	if !next.After(now) {
		next = time.Date(now.Year(), now.Month(), now.Day()+1, 3, 0, 0, 0, time.Local)
	}
	if !st.Installed || st.Kind != "crontab" || st.Schedule != "0 3 * * *" || st.NextRun == nil || !st.NextRun.Equal(next) ||
		st.LastRun == nil || !st.LastRun.OK || st.LastRun.Backup != scheduled.Path || st.LastBackup == nil || st.LastBackup.Name != scheduled.Name {
		t.Errorf("status %+v (next run want %s)", st, next)
	}
	if strings.Contains(st.Command, "secret-uuid") || strings.Contains(st.Ping, "secret-uuid") {
		t.Errorf("status shows the ping URL's key: %s %s", st.Command, st.Ping)
	}
	out, _, _ := s.EchoBackup(append(s.ProjectArgs(), "schedule", "status")...)
	t.Logf("schedule status:\n%s", out)
	for _, want := range []string{"Next run:", "Last run:     OK", "Last backup:  " + scheduled.Name} {
		if !strings.Contains(out, want) {
			t.Errorf("status lacks %q:\n%s", want, out)
		}
	}

	// A project of the same name in another folder gets its own entry; removing it there leaves
	// this one.
	otherDir := filepath.Join(t.TempDir(), "same-name")
	if err := os.Mkdir(otherDir, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, f := range append([]string{".env"}, s.ComposeFiles...) {
		b, err := os.ReadFile(filepath.Join(s.Dir, f))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(otherDir, f), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	inOther := func(args ...string) Result {
		return s.Run(RunOpts{Dir: otherDir}, "docker", append(append([]string{"echobackup"}, s.ProjectArgs()...), args...)...)
	}
	r = inOther("schedule", "install", "--at", "04:00")
	if now, _ := readCrontab(t); r.Code != 0 || len(ourLines(now)) != 2 || !strings.Contains(now, lines[0]+"\n") ||
		!strings.Contains(r.Stdout, "in "+s.Dir+" has its own entry") {
		t.Errorf("install in a second folder of project %s: exit %d\n%s%s\ncrontab:\n%s", s.Name, r.Code, r.Stdout, r.Stderr, now)
	}
	if r := inOther("schedule", "remove"); r.Code != 0 || !strings.Contains(r.Stdout, "Removed the schedule") {
		t.Errorf("remove in the second folder: exit %d\n%s%s", r.Code, r.Stdout, r.Stderr)
	}
	if now, _ := readCrontab(t); now != after {
		t.Errorf("remove in the second folder left\n%s\nwant\n%s", now, after)
	}

	// Runs never overlap: with the lock held, a run does nothing and pings nothing.
	lock, err := os.OpenFile(filepath.Join(s.Dir, "backups", ".echobackup.lock"), os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	if err := syscall.Flock(int(lock.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		t.Fatal(err)
	}
	_, _, code, _ = runAsCron(t, command)
	lock.Close()
	logText, _ = os.ReadFile(filepath.Join(s.Dir, "backups", "schedule.log"))
	if code == 0 || len(s.list(t)) != 1 || len(ping.take()) != 0 || !strings.Contains(string(logText), "skipped: another echobackup command is working in the backup folder") {
		t.Errorf("a run with the lock held: exit %d\n%s", code, logText)
	}

	// save --prune: the new backup is the last one; the scheduled one stays as the newest verified.
	res := s.save(t, "--prune", "--keep-last", "1", "--keep-daily", "0", "--keep-weekly", "0", "--keep-monthly", "0")
	if entries := s.list(t); len(entries) != 2 || entries[0].Path != res.Path || entries[1].Path != scheduled.Path {
		t.Errorf("after save --prune: %+v", entries)
	}

	// A failing run says so to the ping and in status.
	s.MustCompose("stop", "--timeout", "1", s.DBService)
	_, _, code, _ = runAsCron(t, command)
	hits = ping.take()
	if code == 0 || len(hits) != 2 || hits[0].Path != "/ping/3f1c-secret-uuid/start" ||
		hits[1] != (pingHit{"POST", "/ping/3f1c-secret-uuid/fail", hits[1].Body}) || hits[1].Body == "" {
		t.Errorf("failed run: exit %d, pings %+v", code, hits)
	}
	if st := s.scheduleStatus(t); st.LastRun == nil || st.LastRun.OK || st.LastRun.Error != hits[len(hits)-1].Body {
		t.Errorf("status after a failed run: %+v", st.LastRun)
	}
	if len(s.list(t)) != 2 {
		t.Errorf("a failed run changed the backups")
	}
	logText, _ = os.ReadFile(filepath.Join(s.Dir, "backups", "schedule.log"))
	t.Logf("the failed run reported: %s\nschedule.log:\n%s", hits[len(hits)-1].Body, logText)

	// And cron itself runs it: Debian's daemon, every minute, until a run saved a backup.
	s.MustCompose("start", s.DBService)
	s.WaitDB(2 * time.Minute)
	everyMinute := append(append([]string{}, install...), "--at", "* * * * *") // the last --at wins
	if out, errOut, code := s.EchoBackup(everyMinute...); code != 0 {
		t.Fatalf("schedule install every minute: exit %d\n%s%s", code, out, errOut)
	}
	runCronDaemon(t, s)

	out, errOut, code := s.EchoBackup(append(s.ProjectArgs(), "schedule", "remove")...)
	if code != 0 || !strings.Contains(out, "Removed the schedule") {
		t.Fatalf("schedule remove: exit %d: %s%s", code, out, errOut)
	}
	if _, err := os.Stat(filepath.Join(s.Dir, "backups", ".schedule.ping")); !os.IsNotExist(err) {
		t.Errorf("remove left the ping URL in the backup folder: %v", err)
	}
	if now, exists := readCrontab(t); now != before || exists != existed {
		t.Errorf("after remove the crontab is %q (exists %v), before install %q (exists %v)", now, exists, before, existed)
	}
	if out, _, code := s.EchoBackup(append(s.ProjectArgs(), "schedule", "remove")...); code != 0 || !strings.Contains(out, "No schedule") {
		t.Errorf("a second remove: exit %d: %s", code, out)
	}
}

// runCronDaemon runs Debian's cron daemon on the user's crontab alone (a private mount
// namespace hides /etc/crontab, /etc/cron.d and every other user's crontab from it) until the
// scheduled job has run once more and saved a verified backup, then stops it.
func runCronDaemon(t *testing.T, s *Stack) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Log("NOT CHECKED: running cron's daemon in a private mount namespace needs root")
		return
	}
	cronBin, err := exec.LookPath("cron")
	if err != nil {
		t.Fatal("no cron daemon (Debian's cron package): ", err)
	}
	text, _ := readCrontab(t)
	tmp := t.TempDir()
	spool := filepath.Join(tmp, "crontabs")
	if err := os.Mkdir(spool, 0o700); err != nil {
		t.Fatal(err)
	}
	u, _ := user.Current()
	if err := os.WriteFile(filepath.Join(spool, u.Username), []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(tmp, "crontab"), nil, 0o644)
	os.Mkdir(filepath.Join(tmp, "cron.d"), 0o755)
	mounts := "mount --bind " + tmp + "/crontab /etc/crontab && mount --bind " + tmp + "/cron.d /etc/cron.d && " +
		"mount --bind " + spool + " /var/spool/cron/crontabs"
	// The daemon's pid file: a running system cron holds /run/crond.pid, so ours gets its own
	// file over it; else ours creates it and it is removed afterwards.
	const pidFile = "/run/crond.pid"
	if _, err := os.Stat(pidFile); err == nil {
		os.WriteFile(filepath.Join(tmp, "pid"), nil, 0o644)
		mounts += " && mount --bind " + tmp + "/pid " + pidFile
	} else {
		t.Cleanup(func() { os.Remove(pidFile) })
	}
	before := time.Now()
	var daemonOut bytes.Buffer
	cmd := exec.Command("unshare", "--mount", "--propagation", "private", "/bin/sh", "-c", mounts+" && exec "+cronBin+" -f -L 15")
	cmd.Stdout, cmd.Stderr = &daemonOut, &daemonOut
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	stop := func() {
		cmd.Process.Signal(syscall.SIGTERM)
		cmd.Wait()
	}
	defer stop()
	deadline := before.Add(150 * time.Second)
	for time.Now().Before(deadline) {
		time.Sleep(3 * time.Second)
		st := s.scheduleStatus(t)
		if st.LastRun != nil && st.LastRun.Backup != "" && st.LastBackup != nil && st.LastBackup.Path == st.LastRun.Backup {
			if fi, err := os.Stat(st.LastRun.Backup); err == nil && fi.ModTime().After(before) {
				if !st.LastRun.OK || st.LastBackup.Verified == nil || !st.LastBackup.Verified.OK {
					t.Fatalf("the run cron started: %+v", st.LastRun)
				}
				t.Logf("cron's daemon ran the entry %s after it started: %s", time.Since(before).Round(time.Second), st.LastRun.Summary)
				return
			}
		}
	}
	stop()
	logText, _ := os.ReadFile(filepath.Join(s.Dir, "backups", "schedule.log"))
	t.Fatalf("cron's daemon did not run the entry within 150 s\ndaemon output:\n%s\nschedule.log:\n%s", daemonOut.String(), logText)
}
