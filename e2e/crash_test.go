//go:build e2e

package e2e

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// crashCheck is what must hold once the command after a kill has run: the live state is the
// one before, every service that ran runs, no helper container and no leftover file is
// there, and every listed backup is complete: it verifies (once; its bytes are then compared).
type crashCheck struct {
	s        *Stack
	dir      string
	before   state
	services []string
	verified map[string]string // path -> sha256 when it verified
}

func newCrashCheck(t *testing.T, s *Stack) *crashCheck {
	t.Helper()
	return &crashCheck{s: s, dir: filepath.Join(s.Dir, "backups"), before: s.state(),
		services: s.runningList(t), verified: map[string]string{}}
}

// after checks the deployment after a killed command and the command that followed it.
func (c *crashCheck) after(t *testing.T, what string) {
	t.Helper()
	assertSameState(t, what, c.before, c.s.state())
	if got := c.s.runningList(t); !slices.Equal(got, c.services) {
		t.Errorf("%s: running services %v, want %v", what, got, c.services)
	}
	if left := c.s.helpersLeft(t); len(left) > 0 {
		t.Errorf("%s: helper containers left: %v", what, left)
	}
	if left := leftoversIn(t, c.dir); len(left) > 0 {
		t.Errorf("%s: leftovers in the backup folder: %v", what, left)
	}
	c.backupsComplete(t, what)
}

// backupsComplete: every backup list shows verifies, and one that verified earlier is
// byte-identical now.
func (c *crashCheck) backupsComplete(t *testing.T, what string) {
	t.Helper()
	for _, e := range c.s.list(t) {
		sum, err := sha256File(e.Path)
		if err != nil {
			t.Errorf("%s: listed backup %s: %v", what, e.Name, err)
			continue
		}
		if was, ok := c.verified[e.Path]; ok {
			if was != sum {
				t.Errorf("%s: backup %s changed", what, e.Name)
			}
			continue
		}
		if out, code := c.s.verify(t, e.Path); code != 0 {
			t.Errorf("%s: listed backup %s does not verify: %s", what, e.Name, out)
			continue
		}
		c.verified[e.Path] = sum
	}
}

// TestSaveKillTrials: save killed with kill -9 of its whole process group at moments spread
// over its run, from before it connects to the engine until after it has finished. After
// each, `status` and a save run; nothing of the killed save may remain or have changed.
func TestSaveKillTrials(t *testing.T) {
	s := NewStack(t, "custom")
	s.Up()
	addPlays(t, s, 150000) // a dump that takes a moment, in a test that stays short
	project := s.ProjectArgs()
	// Its normal duration, the second run without the first one's cold caches.
	timed(t, s, append(project, "save")...)
	normal := timed(t, s, append(project, "save")...)
	t.Logf("a save takes %s", normal.Round(time.Millisecond))
	c := newCrashCheck(t, s)
	c.backupsComplete(t, "before the trials")

	killed, finished, late := 0, 0, 0
	delays := spreadDelays(normal, 12)
	for i, d := range delays {
		what := fmt.Sprintf("save killed at %s (trial %d)", d.Round(time.Millisecond), i+1)
		r := killAt(t, s, d, append(project, "save")...)
		if r.Killed {
			killed++
		} else {
			finished++
			if r.Code != 0 {
				t.Errorf("%s: finished before the kill with exit %d: %s", what, r.Code, r.Stderr)
			}
		}
		_, errOut, code := s.EchoBackup(append(project, "status")...)
		if code != 0 {
			t.Errorf("%s: status after the kill: exit %d: %s", what, code, errOut)
		}
		// A create the killed save had sent may land after status listed the helpers: such
		// a container never started (no process, no connection) and the next command removes
		// it. Anything else status must have removed.
		if left := s.helpersLeft(t); len(left) > 0 {
			for _, h := range left {
				if !strings.HasSuffix(h, " Created") {
					t.Errorf("%s: status left a helper that ran: %s\nstatus said: %s", what, h, errOut)
				}
			}
			late++
			t.Logf("%s: %d never-started helper(s) created after status looked: %v", what, len(left), left)
			s.explainHelpers(t, left)
		}
		s.save(t)
		c.after(t, what)
	}
	t.Logf("save kill trials: %d (delays %s to %s), killed mid-run %d, finished before the kill %d; "+
		"a never-started helper created after the next command looked: %d; after the save that followed each: "+
		"state unchanged, services running, no helper, no leftover, %d backups listed, all verified",
		len(delays), delays[0], delays[len(delays)-1].Round(time.Millisecond), killed, finished, late, len(c.verified))
	if killed < len(delays)/2 {
		t.Errorf("only %d of %d saves were killed mid-run: the delays miss the run", killed, len(delays))
	}
}

// explainHelpers logs what the engine and /proc say of helpers that should be gone.
func (s *Stack) explainHelpers(t *testing.T, left []string) {
	t.Helper()
	for _, h := range left {
		id := strings.Fields(h)[0]
		r := s.Run(RunOpts{Quiet: true}, "docker", "inspect", "--format",
			`{{.Created}} {{.State.Status}} {{index .Config.Labels "com.echobackup.owner.pid"}} {{index .Config.Labels "com.echobackup.owner.start"}}`, id)
		f := strings.Fields(r.Stdout)
		stat := "-"
		if len(f) > 2 {
			b, _ := os.ReadFile("/proc/" + f[2] + "/stat")
			stat = string(b)
		}
		t.Logf("helper %s: %s; now %s; owner's /proc stat: %s", id, strings.TrimSpace(r.Stdout), time.Now().UTC().Format(time.RFC3339Nano), stat)
	}
}

// TestPruneKillTrials: prune killed with kill -9 at moments spread over its run; list then
// shows only complete backups, each one byte-identical to when it verified.
func TestPruneKillTrials(t *testing.T) {
	s := NewStack(t, "custom")
	s.Up()
	project := s.ProjectArgs()
	for range 9 {
		s.save(t)
	}
	c := newCrashCheck(t, s)
	c.backupsComplete(t, "before the trials")
	// A real prune that keeps everything: the lock, the sweep, the listing, no removal.
	normal := timed(t, s, append(project, "prune", "--keep-last", "100")...)
	t.Logf("a prune takes %s", normal.Round(time.Millisecond))

	killed, finished := 0, 0
	delays := spreadDelays(normal, 5)
	keeps := []int{8, 6, 4, 2, 1} // each trial has backups to remove
	for i, d := range delays {
		keep := strconv.Itoa(keeps[i])
		what := fmt.Sprintf("prune --keep-last %s killed at %s (trial %d)", keep, d.Round(time.Millisecond), i+1)
		r := killAt(t, s, d, append(project, "prune", "--keep-last", keep, "--keep-daily", "0", "--keep-weekly", "0", "--keep-monthly", "0")...)
		if r.Killed {
			killed++
		} else {
			finished++
			if r.Code != 0 {
				t.Errorf("%s: finished with exit %d: %s", what, r.Code, r.Stderr)
			}
		}
		c.backupsComplete(t, what+", then list")
		// The next command that takes the folder's lock.
		if _, errOut, code := s.EchoBackup(append(project, "pin", "latest")...); code != 0 {
			t.Errorf("%s: pin latest: exit %d: %s", what, code, errOut)
		}
		c.after(t, what)
	}
	t.Logf("prune kill trials: %d (delays %s to %s), killed mid-run %d, finished before the kill %d; all consistent",
		len(delays), delays[0], delays[len(delays)-1].Round(time.Millisecond), killed, finished)
}

// TestHelperEndsWithKilledPlugin: kill -9 of save while pg_dump's helper runs leaves no helper
// container, without any other command (the helper's watchdog sees its attach connection
// close, ends, and the engine removes it). And the next command of the project removes a
// helper whose owner is gone, but not one of another host, one without owner labels, or
// anything that is not a helper.
func TestHelperEndsWithKilledPlugin(t *testing.T) {
	s := NewStack(t, "custom")
	s.Up()
	addPlays(t, s, 300000)
	project := s.ProjectArgs()
	pgRunning := func() bool {
		r := s.Run(RunOpts{Quiet: true}, "docker", "ps", "-q", "--filter", "label="+LabelEchoProject+"="+s.Name,
			"--filter", "label=com.echobackup.helper=pg")
		return strings.TrimSpace(r.Stdout) != ""
	}
	for trial := 1; trial <= 3; trial++ {
		r := killWhen(t, s, 60*time.Second, pgRunning, append(project, "save")...)
		if !r.Killed {
			t.Fatalf("trial %d: save ended (exit %d) before pg_dump's helper was seen: %s", trial, r.Code, r.Stderr)
		}
		took, left := s.waitNoHelpers(t, 30*time.Second)
		// A created, never started, read helper of the data volume may stay: that one is the
		// next command's to remove. A started one must be gone by itself.
		for _, h := range left {
			if !strings.Contains(h, " read ") {
				t.Errorf("trial %d: %s after the kill, a helper is still there: %s", trial, took.Round(time.Millisecond), h)
			}
		}
		t.Logf("trial %d: killed at %s; %d helper(s) left %s after the kill (started ones end by themselves)",
			trial, r.Elapsed.Round(time.Millisecond), len(left), took.Round(time.Millisecond))
		if _, errOut, code := s.EchoBackup(append(project, "status")...); code != 0 {
			t.Fatalf("status: exit %d: %s", code, errOut)
		}
		if left := s.helpersLeft(t); len(left) > 0 {
			t.Errorf("trial %d: helpers left after status: %v", trial, left)
		}
	}

	// Helpers as killed commands of other kinds leave them, made by hand with our labels.
	dead := exec.Command("true")
	if err := dead.Run(); err != nil {
		t.Fatal(err)
	}
	host, _ := os.Hostname()
	mk := func(labels ...string) string {
		args := []string{"run", "-d", "--network", "none", "--label", LabelTest + "=1", "--label", LabelEchoProject + "=" + s.Name}
		for _, l := range labels {
			args = append(args, "--label", l)
		}
		return strings.TrimSpace(s.MustDocker(append(args, "--entrypoint", "sleep", pgImage, "600")...))
	}
	owner := func(h string, pid int) []string {
		return []string{"com.echobackup.helper=restore", "com.echobackup.owner.host=" + h,
			"com.echobackup.owner.pid=" + strconv.Itoa(pid), "com.echobackup.owner.start=1"}
	}
	orphan := mk(owner(host, dead.Process.Pid)...)
	reused := mk(owner(host, os.Getpid())...) // our PID, another start time: not its owner
	elsewhere := mk(owner(host+"-elsewhere", dead.Process.Pid)...)
	unowned := mk("com.echobackup.helper=restore")
	notHelper := mk()
	_, errOut, code := s.EchoBackup(append(project, "status")...)
	if code != 0 || !strings.Contains(errOut, "Removed 2 helper container") {
		t.Errorf("status: exit %d, want it to say it removed 2 helpers: %s", code, errOut)
	}
	for id, want := range map[string]bool{orphan: false, reused: false, elsewhere: true, unowned: true, notHelper: true} {
		_, _, code := s.Docker("inspect", "--format", "{{.ID}}", id)
		if (code == 0) != want {
			t.Errorf("container %.12s: exists %v, want %v", id, code == 0, want)
		}
	}
	if len(s.sentinels(t)) != 0 {
		t.Errorf("a sentinel appeared")
	}
}

// TestSaveDiskFull: a save into a backup folder whose disk fills up during the save fails in
// one line with exit 1, leaves no partial file and no helper, and the backup made there
// earlier is byte-identical and still verifies.
func TestSaveDiskFull(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Fatal("this test mounts a tmpfs: run it as root")
	}
	s := NewStack(t, "custom")
	s.Up()
	project := s.ProjectArgs()
	// 12 MiB of random bytes: its dump does not compress below the 1:2 that save's space
	// check assumes, so the check lets the save start and the disk fills during it.
	s.Psql(`create table blobs (id int primary key, b bytea);
		insert into blobs select r, decode(string_agg(md5(random()::text || g), ''), 'hex')
		from generate_series(1, 12) r, generate_series(1, 65536) g group by r;`)
	dir := filepath.Join(t.TempDir(), "full")
	if err := os.Mkdir(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	mustRun(t, "mount", "-t", "tmpfs", "-o", "size=160m,mode=0700", "tmpfs", dir)
	t.Cleanup(func() {
		if out, err := exec.Command("umount", dir).CombinedOutput(); err != nil {
			t.Logf("umount %s: %v: %s; lazy unmount", dir, err, out)
			exec.Command("umount", "-l", dir).Run()
		}
	})
	first := s.save(t, "-o", dir)
	sumBefore, err := sha256File(first.Path)
	if err != nil {
		t.Fatal(err)
	}

	// Leave room between what the space check asks for and what the archive takes.
	dbSize, _ := strconv.ParseInt(strings.TrimSpace(s.Psql(`select pg_database_size(current_database())`)), 10, 64)
	need := dbSize/2 + 1<<20 // the check's estimate, with the data volume's few files
	if need >= first.Size-2<<20 {
		t.Fatalf("fixture too small for the test: the check needs %d bytes, the archive takes %d", need, first.Size)
	}
	var fs syscall.Statfs_t
	if err := syscall.Statfs(dir, &fs); err != nil {
		t.Fatal(err)
	}
	used := int64(fs.Blocks-fs.Bfree) * fs.Bsize
	room := (need + first.Size) / 2
	mustRun(t, "mount", "-o", fmt.Sprintf("remount,size=%dk", (used+room)/1024), dir)
	t.Logf("backup folder on a tmpfs: first backup %d bytes, %d bytes left for the second", first.Size, room)

	stdout, stderr, code := s.EchoBackup(append(project, "save", "-o", dir)...)
	// Besides the timed progress lines of a stderr that is no terminal, one line says it.
	lines := withoutProgress(nonEmptyLines(stderr))
	if code != 1 || len(lines) != 1 || !strings.Contains(lines[0], "is full (ENOSPC)") ||
		!strings.Contains(lines[0], "nothing was saved, the previous backups are untouched") || stdout != "" {
		t.Errorf("save into a full folder: exit %d, want 1 and one line; stdout %q, stderr:\n%s", code, stdout, stderr)
	}
	t.Logf("save into the full folder: exit %d: %s", code, strings.Join(lines, " | "))
	if left := leftoversIn(t, dir); len(left) > 0 {
		t.Errorf("leftovers in the full folder: %v", left)
	}
	if left := s.helpersLeft(t); len(left) > 0 {
		t.Errorf("helper containers left: %v", left)
	}
	if sum, err := sha256File(first.Path); err != nil || sum != sumBefore {
		t.Errorf("the earlier backup changed: %v", err)
	}
	out, errOut, code := s.EchoBackup(append(project, "list", "-o", dir, "--format", "json")...)
	if code != 0 || strings.Count(out, `"path"`) != 1 || !strings.Contains(out, first.Path) {
		t.Errorf("list: exit %d: %s%s", code, out, errOut)
	}
	if out, code := s.verify(t, first.Path); code != 0 {
		t.Errorf("the earlier backup no longer verifies: %s", out)
	}
}
