//go:build e2e

package e2e

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// killPoint says when a trial kills the restore: after a delay from its start, or a delay after
// the first progress line holding a text.
type killPoint struct {
	after time.Duration
	line  string // "": count from the start
}

func (k killPoint) String() string {
	if k.line == "" {
		return fmt.Sprintf("%s after the start", k.after.Round(time.Millisecond))
	}
	return fmt.Sprintf("%s after %q", k.after.Round(time.Millisecond), k.line)
}

// killedRun runs `docker echobackup ARGS` in a process group of its own and kill -9s the whole
// group (the docker CLI and the plugin it started) at k. It returns stderr so far and whether
// the kill came before the command ended on its own.
func (s *Stack) killedRun(t *testing.T, k killPoint, args ...string) (string, bool) {
	t.Helper()
	cmd := exec.Command("docker", append([]string{"echobackup"}, args...)...)
	cmd.Dir, cmd.Env = s.Dir, append(os.Environ(), s.Env...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var out strings.Builder
	fire := make(chan struct{})
	var once sync.Once
	arm := func(d time.Duration) { once.Do(func() { time.AfterFunc(d, func() { close(fire) }) }) }
	if k.line == "" {
		arm(k.after)
	}
	lines := make(chan struct{})
	go func() {
		defer close(lines)
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			mu.Lock()
			out.WriteString(sc.Text() + "\n")
			mu.Unlock()
			if k.line != "" && strings.Contains(sc.Text(), k.line) {
				arm(k.after)
			}
		}
	}()
	exited := make(chan error, 1)
	go func() { <-lines; exited <- cmd.Wait() }()
	killed := false
	select {
	case <-fire:
		killed = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) == nil
		<-exited
	case <-exited:
	case <-time.After(3 * time.Minute):
		syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		<-exited
		t.Fatalf("the restore neither ended nor reached %s in 3 minutes", k)
	}
	mu.Lock()
	defer mu.Unlock()
	return out.String(), killed
}

// progressLine matches restore's progress lines: "[  1.2s] stopping echo, cache".
var progressLine = regexp.MustCompile(`^\[\s*([0-9.]+)s\] (.*)$`)

// withoutProgress drops the progress lines.
func withoutProgress(lines []string) []string {
	var out []string
	for _, l := range lines {
		if !progressLine.MatchString(l) {
			out = append(out, l)
		}
	}
	return out
}

// progressTimes are the restore's progress lines with their seconds since its start.
func progressTimes(stderr string) [][2]string {
	var out [][2]string
	for _, l := range nonEmptyLines(stderr) {
		if m := progressLine.FindStringSubmatch(l); m != nil {
			out = append(out, [2]string{m[1], m[2]})
		}
	}
	return out
}

func (s *Stack) journalPath() string {
	return filepath.Join(s.Dir, "backups", ".echobackup-restore-"+s.Name+".journal")
}

// journalPhase is the phase of the restore journal, "" when there is none.
func (s *Stack) journalPhase(t *testing.T) string {
	t.Helper()
	data, err := os.ReadFile(s.journalPath())
	if os.IsNotExist(err) {
		return ""
	}
	if err != nil {
		t.Fatal(err)
	}
	var j struct{ Phase string }
	if err := json.Unmarshal(data, &j); err != nil {
		t.Fatalf("reading the journal: %v\n%s", err, data)
	}
	return j.Phase
}

// assertNoRestoreLeftovers: no staging or set-aside database, no journal, no temporary entry
// in the backup folder (staged dump, a killed safety backup's partial archive or pg_dump
// folder: the next command's sweep takes those), no helper container. (Folders inside the
// volume show in its fingerprint, which the caller compares.)
func (s *Stack) assertNoRestoreLeftovers(t *testing.T, what string) {
	t.Helper()
	if dbs := s.Psql("select string_agg(datname, ',') from pg_database where datname like '%echobackup%'"); dbs != "" {
		t.Errorf("%s: databases left: %s", what, dbs)
	}
	dir := filepath.Join(s.Dir, "backups")
	if _, err := os.Stat(s.journalPath()); err == nil {
		t.Errorf("%s: the restore journal is still there", what)
	}
	if left := leftoversIn(t, dir); len(left) > 0 {
		t.Errorf("%s: left in the backup folder: %v", what, left)
	}
	// A bind folder's staging and set-aside copies are its siblings.
	if left, _ := filepath.Glob(filepath.Join(s.Dir, ".*echobackup*")); len(left) > 0 {
		t.Errorf("%s: staging or set-aside folders left beside the data folder: %v", what, left)
	}
	if _, left := s.waitNoHelpers(t, 10*time.Second); len(left) > 0 {
		t.Errorf("%s: helper containers left: %v", what, left)
	}
}

// TestRestoreKillTrials kills restores with kill -9 of their whole process group at moments
// spread over every phase, from timings measured on a normal restore and right after chosen
// progress lines. After each kill, status names the interrupted restore, save refuses while it
// is half swapped, and `restore --resume` leaves the deployment wholly as before or wholly
// restored, with every service that ran running and nothing staged or set aside left.
//
// It runs on the custom fixture (a data volume); ECHOBACKUP_KILL_FIXTURE=seed runs it on the
// seed fixture's ./data bind folder instead.
func TestRestoreKillTrials(t *testing.T) {
	fixture := "custom"
	if f := os.Getenv("ECHOBACKUP_KILL_FIXTURE"); f != "" {
		fixture = f
	}
	s := NewStack(t, fixture)
	s.Up()
	running := s.runningServices(t)
	type version struct {
		name  string
		path  string
		state state
	}
	a := version{name: "A", path: s.save(t).Path, state: s.state()}
	s.change(t)
	b := version{name: "B", path: s.save(t).Path, state: s.state()}
	restoreArgs := func(path string) []string { return append(s.ProjectArgs(), "restore", path, "--yes") }

	// Two normal restores first (there and back), to learn how long the phases take here; the
	// shorter one sets the spread, so that most delays land inside a restore.
	total := time.Duration(0)
	for _, v := range []version{a, b} {
		t0 := time.Now()
		out, errOut, code := s.EchoBackup(restoreArgs(v.path)...)
		if code != 0 {
			t.Fatalf("the timing restore failed: %s%s", out, errOut)
		}
		took := time.Since(t0)
		t.Logf("a normal restore took %s; its progress:", took.Round(time.Millisecond))
		for _, p := range progressTimes(errOut) {
			t.Logf("  %6ss  %s", p[0], p[1])
		}
		assertSameState(t, "after the timing restore", v.state, s.state())
		if total == 0 || took < total {
			total = took
		}
	}
	cur, other := b, a

	// Restores after the first ones run faster (caches are warm): spread the delays over the
	// first 70% of the timing restore, so that few land after the end.
	var points []killPoint
	const spread = 14
	for i := 0; i < spread; i++ {
		points = append(points, killPoint{after: time.Duration(0.7 * float64(total) * (float64(i) + 0.5) / spread)})
	}
	for _, l := range []struct {
		line  string
		after time.Duration
	}{
		{"staging and checking", 0}, {"files staged", 0}, {"loading the dump", 100 * time.Millisecond},
		{"the new database is loaded", 0}, {"stopping", 0}, {"stopping", 300 * time.Millisecond},
		{"stopping", 600 * time.Millisecond}, {"stopping", 900 * time.Millisecond},
		{"starting", 0}, {"starting", 300 * time.Millisecond}, {"services are back", 0},
		{"safety backup)", 200 * time.Millisecond}, {"safety backup saved", 0}, {"removing what the swap set aside", 0},
	} {
		points = append(points, killPoint{line: l.line, after: l.after})
	}

	counts := map[string]int{}
	phasesSeen := map[string]int{}
	for i, k := range points {
		target := other
		stderr, killed := s.killedRun(t, k, restoreArgs(target.path)...)
		phase := s.journalPhase(t)
		phasesSeen[orNone(phase)]++
		if phase != "" {
			_, st, code := s.EchoBackup(append(s.ProjectArgs(), "status")...)
			if code != 0 || countLines(st, "was interrupted at") != 1 && !strings.Contains(st, "safety backup failed") {
				t.Errorf("trial %d: status after a kill at %q: exit %d, stderr:\n%s", i, phase, code, st)
			}
			if phase == "stopping" || phase == "swapping" || phase == "swapped" {
				_, se, code := s.EchoBackup(append(s.ProjectArgs(), "save")...)
				if code == 0 || !strings.Contains(se, "refused") {
					t.Errorf("trial %d: save over a restore interrupted at %q: exit %d\n%s", i, phase, code, se)
				}
			}
		}
		rout, rerr, code := s.EchoBackup(append(s.ProjectArgs(), "restore", "--resume")...)
		if code != 0 {
			t.Fatalf("trial %d (%s, phase %q): restore --resume: exit %d\n%s%s\nkilled restore's stderr:\n%s", i, k, phase, code, rout, rerr, stderr)
		}
		got := s.state()
		var now version
		switch {
		case got.db.Equal(target.state.db) && got.files.Equal(target.state.files):
			now = target
		case got.db.Equal(cur.state.db) && got.files.Equal(cur.state.files):
			now = cur
		default:
			t.Errorf("trial %d (%s, phase %q): the deployment is neither %s nor %s", i, k, phase, cur.name, target.name)
			assertSameState(t, "against the state before", cur.state, got)
			t.Fatalf("killed restore's stderr:\n%s\nresume:\n%s%s", stderr, rout, rerr)
		}
		outcome := ""
		switch {
		case strings.Contains(rout, "Rolled back"):
			outcome = "rolled back"
			if now.name != cur.name {
				t.Errorf("trial %d: resume said rolled back, but the deployment is the restored one", i)
			}
		case strings.Contains(rout, "Finished"):
			outcome = "finished"
			if now.name != target.name {
				t.Errorf("trial %d: resume said finished, but the deployment is the one before", i)
			}
		case !killed:
			outcome = "completed before the kill"
		case now.name == cur.name:
			outcome = "not started"
		default:
			outcome = "completed, killed while exiting"
		}
		counts[outcome]++
		t.Logf("trial %2d: kill %s: journal at %q, %s (now %s)", i, k, phase, outcome, now.name)
		if r := s.runningServices(t); r != running {
			t.Errorf("trial %d: running after resume: %s, before: %s", i, r, running)
		}
		s.assertNoRestoreLeftovers(t, fmt.Sprintf("trial %d", i))
		if t.Failed() {
			t.Fatalf("trial %d failed; killed restore's stderr:\n%s\nresume:\n%s%s", i, stderr, rout, rerr)
		}
		if now.name != cur.name {
			cur, other = other, cur
		}
	}
	var parts []string
	for _, o := range sortedKeys(counts) {
		parts = append(parts, fmt.Sprintf("%s %d", o, counts[o]))
	}
	var seen []string
	for _, p := range sortedKeys(phasesSeen) {
		seen = append(seen, fmt.Sprintf("%s %d", p, phasesSeen[p]))
	}
	t.Logf("restore kill trials: %d: %s; all consistent (journal phases at the kill: %s)", len(points), strings.Join(parts, ", "), strings.Join(seen, ", "))
}

func orNone(s string) string {
	if s == "" {
		return "none"
	}
	return s
}

func countLines(s, sub string) int {
	n := 0
	for _, l := range nonEmptyLines(s) {
		if strings.Contains(l, sub) {
			n++
		}
	}
	return n
}

func sortedKeys(m map[string]int) []string {
	var keys []string
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// TestRestoreSafetyBackupHoldsLastWrites: the safety backup is the state at the moment the app
// stopped. A writer in the app inserts numbered rows until the restore stops it; every row it
// committed is in the safety backup, which is restored to check.
func TestRestoreSafetyBackupHoldsLastWrites(t *testing.T) {
	s := NewStack(t, "custom")
	s.Up()
	s.Psql("create table guard_writes (n int primary key);")
	saved := s.save(t)
	w := s.startWriter(t)
	w.waitFor(t, 20)
	// While it runs, status says a restore is in progress (not that one was interrupted).
	var status string
	out, errOut, code := s.restoreWatching(t, "staging and checking", func() {
		_, status, _ = s.EchoBackup(append(s.ProjectArgs(), "status")...)
	}, saved.Path, "--yes")
	if code != 0 {
		t.Fatalf("restore while the app writes: exit %d\n%s", code, errOut)
	}
	if !strings.Contains(status, "is in progress") || strings.Contains(status, "interrupted") {
		t.Errorf("status during a restore:\n%s", status)
	}
	last := w.stop(t)
	t.Logf("restore: %s", strings.TrimSpace(out))
	if n := s.Psql("select count(*) from guard_writes;"); n != "0" {
		t.Errorf("after the restore guard_writes holds %s rows, the backup none", n)
	}
	m := regexp.MustCompile(`saved in (\S+)`).FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("no safety backup named in:\n%s", out)
	}
	if _, _, code := s.EchoBackup(append(s.ProjectArgs(), "verify", m[1])...); code != 0 {
		t.Errorf("the safety backup does not verify")
	}
	if out, code := s.restore(m[1], "--yes", "--no-safety-backup"); code != 0 {
		t.Fatalf("restoring the safety backup: exit %d\n%s", code, out)
	}
	got := s.Psql("select coalesce(max(n), 0), count(*) from guard_writes;")
	var max, count int
	if _, err := fmt.Sscanf(got, "%d|%d", &max, &count); err != nil {
		t.Fatalf("reading guard_writes: %q: %v", got, err)
	}
	t.Logf("the writer committed %d rows before the restore stopped it; the safety backup holds %d", last, count)
	if max < last || count != max {
		t.Errorf("the safety backup holds rows 1..%d (%d rows); the app had committed up to %d", max, count, last)
	}
	s.assertNoRestoreLeftovers(t, "after both restores")
}

// restoreWatching runs a restore to its end, calling during once, right after the first
// progress line holding line.
func (s *Stack) restoreWatching(t *testing.T, line string, during func(), args ...string) (stdout, stderr string, code int) {
	t.Helper()
	cmd := exec.Command("docker", append(append([]string{"echobackup"}, s.ProjectArgs()...), append([]string{"restore"}, args...)...)...)
	cmd.Dir, cmd.Env = s.Dir, append(os.Environ(), s.Env...)
	var out strings.Builder
	cmd.Stdout = &out
	pipe, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var errOut strings.Builder
	sc := bufio.NewScanner(pipe)
	called := false
	for sc.Scan() {
		errOut.WriteString(sc.Text() + "\n")
		if !called && strings.Contains(sc.Text(), line) {
			called = true
			during()
		}
	}
	err = cmd.Wait()
	if !called {
		t.Errorf("the restore never printed %q", line)
	}
	return out.String(), errOut.String(), exitCode(err)
}

// TestRestoreNextRestoreResumesFirst: a restore killed right after it stopped the app leaves a
// journal; down refuses to run over it, and a plain next restore first rolls it back, then
// restores.
func TestRestoreNextRestoreResumesFirst(t *testing.T) {
	s := NewStack(t, "custom")
	s.Up()
	running := s.runningServices(t)
	want := s.state()
	saved := s.save(t)
	s.change(t)
	stderr, killed := s.killedRun(t, killPoint{line: "stopping"}, append(s.ProjectArgs(), "restore", saved.Path, "--yes")...)
	phase := s.journalPhase(t)
	if !killed || (phase != "stopping" && phase != "swapping" && phase != "swapped") {
		t.Fatalf("the restore was not caught while the app was stopped (killed %v, journal %q):\n%s", killed, phase, stderr)
	}
	if _, se, code := s.EchoBackup(append(s.ProjectArgs(), "down", "-v")...); code == 0 || !strings.Contains(se, "refused") {
		t.Errorf("down -v over a restore interrupted at %q: exit %d\n%s", phase, code, se)
	}
	out, code := s.restore(saved.Path, "--yes")
	if code != 0 || !strings.Contains(out, "was interrupted at") {
		t.Fatalf("the next restore: exit %d\n%s", code, out)
	}
	assertSameState(t, "after the next restore", want, s.state())
	s.assertNoRestoreLeftovers(t, "after the next restore")
	if got := s.runningServices(t); got != running {
		t.Errorf("running after the next restore: %s, before: %s", got, running)
	}
}

// TestRestoreKilledWhileRollingBack: the database dies while the app is stopped, so the swap
// fails and the restore rolls back; the restore is then kill -9ed in the middle of that
// rollback. The journal says it was rolling back, and restore --resume finishes the rollback:
// the state is the one before, the app runs, nothing staged is left.
func TestRestoreKilledWhileRollingBack(t *testing.T) {
	s := NewStack(t, "custom")
	s.Up()
	running := s.runningServices(t)
	saved := s.save(t)
	s.change(t)
	before := s.state()
	// First at the rollback's first line; then once the rollback has started the database
	// again and is putting things back.
	for _, afterRevive := range []bool{false, true} {
		cmd := exec.Command("docker", append(append([]string{"echobackup"}, s.ProjectArgs()...), "restore", saved.Path, "--yes")...)
		cmd.Dir, cmd.Env = s.Dir, append(os.Environ(), s.Env...)
		cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
		pipe, err := cmd.StderrPipe()
		if err != nil {
			t.Fatal(err)
		}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		var stderr strings.Builder
		sc := bufio.NewScanner(pipe)
		killedDB, armed := false, false
		for sc.Scan() {
			stderr.WriteString(sc.Text() + "\n")
			switch {
			case !killedDB && strings.Contains(sc.Text(), "stopping"):
				killedDB = true
				s.MustDocker("kill", s.ContainerID(s.DBService))
			case !armed && strings.Contains(sc.Text(), "rolling back"):
				armed = true
				if !afterRevive {
					syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
					break
				}
				db := s.ContainerID(s.DBService)
				go func() {
					for s.Run(RunOpts{Quiet: true}, "docker", "inspect", "-f", "{{.State.Running}}", db).Stdout != "true\n" {
						time.Sleep(20 * time.Millisecond)
					}
					syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
				}()
			}
		}
		cmd.Wait()
		phase := s.journalPhase(t)
		t.Logf("killed during the rollback (after the database came back: %v): journal at %q\n%s", afterRevive, phase, stderr.String())
		if !armed || phase == "" {
			t.Fatalf("the restore was not killed while rolling back (journal %q)", phase)
		}
		if j, _ := os.ReadFile(s.journalPath()); afterRevive && !strings.Contains(string(j), `"rollingBack": true`) {
			t.Errorf("the journal of a restore killed while rolling back does not say so:\n%s", j)
		}
		out, errOut, code := s.EchoBackup(append(s.ProjectArgs(), "restore", "--resume")...)
		if code != 0 || !strings.Contains(out, "Rolled back") {
			t.Fatalf("restore --resume: exit %d\n%s%s", code, out, errOut)
		}
		s.WaitDB(2 * time.Minute)
		after := s.state()
		// A killed server recovers its sequences up to 32 values ahead: that is the crash.
		assertSequencesNotBehind(t, s, before.db, after.db)
		assertSameState(t, "after resuming a killed rollback",
			state{db: withoutSequences(before.db), files: before.files}, state{db: withoutSequences(after.db), files: after.files})
		if got := s.runningServices(t); got != running {
			t.Errorf("running after resume: %s, before: %s", got, running)
		}
		s.assertNoRestoreLeftovers(t, "after resuming a killed rollback")
		before = after
	}
	// Nothing left to resume: scripts get an outcome, not null.
	out, errOut, code := s.EchoBackup(append(s.ProjectArgs(), "restore", "--resume", "--format", "json")...)
	if code != 0 || !strings.Contains(out, `"outcome": "nothing to resume"`) {
		t.Errorf("restore --resume --format json with no journal: exit %d\n%s%s", code, out, errOut)
	}
}
