//go:build e2e

package e2e

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// SSHD is an OpenSSH server in front of a second engine, made and removed by scripts/sshd.sh
// (shared with scripts/bench.sh --migrate): Debian's sshd in the engine's network namespace,
// reached over a veth pair on a private /29, key-only root login with a key the script makes,
// and docker contexts host=ssh://root@ADDRESS in the suite's DOCKER_CONFIG. The docker CLI's own
// ssh helper carries the connection: `ssh … docker system dial-stdio` on the remote side.
type SSHD struct {
	Address string
	// Path goes first in PATH: its ssh and scp run with the rig's client config (key,
	// known_hosts), never ~/.ssh.
	Path    string
	Context string
	// Contexts of bad targets: an address of the subnet nobody has, one where the client
	// offers a key the server does not know, one whose remote shell has no docker CLI.
	Silent, Refused, NoDocker string
	link                      string // the veth pair's host side
	dir                       string
}

// StartSSHD starts the server in front of e; t.Cleanup stops it (before e stops: cleanups run
// last-in first-out). Like StartEngine2 it fails, never skips, when the machine lacks what it
// needs (root, ip, nsenter, ssh-keygen, and apt-get when sshd is not installed).
func StartSSHD(t *testing.T, e *Engine2) *SSHD {
	t.Helper()
	t0 := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	out, err := output(ctx, "", nil, "bash", sshdScript(), "start", e.dir, "--prefix", "ebt-ssh-")
	if err != nil {
		t.Fatalf("starting an ssh server for %s: %v", e, err)
	}
	vars := map[string]string{}
	for _, line := range nonEmptyLines(out) {
		if k, v, ok := strings.Cut(line, "="); ok {
			vars[k] = v
		}
	}
	s := &SSHD{Address: vars["SSHD_ADDRESS"], Path: vars["SSHD_PATH"], Context: vars["SSHD_CONTEXT"],
		Silent: vars["SSHD_CONTEXT_SILENT"], Refused: vars["SSHD_CONTEXT_REFUSED"], NoDocker: vars["SSHD_CONTEXT_NODOCKER"],
		link: vars["SSHD_LINK"], dir: vars["SSHD_DIR"]}
	if s.dir != "" {
		t.Cleanup(func() { s.stop(t) })
	}
	if s.Address == "" || s.Path == "" || s.Context == "" || s.Silent == "" || s.Refused == "" || s.NoDocker == "" || s.link == "" {
		t.Fatalf("sshd.sh start printed an incomplete set of SSHD_ lines:\n%s", out)
	}
	t.Logf("ssh server %s on %s in front of %s, up in %s", s.Context, s.Address, e.Context, time.Since(t0).Round(time.Millisecond))
	return s
}

func sshdScript() string { return filepath.Join(moduleRoot, "scripts", "sshd.sh") }

func (s *SSHD) stop(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	out, err := combined(ctx, "", nil, "bash", sshdScript(), "stop", s.dir)
	if err != nil {
		t.Errorf("stopping the ssh server %s: %v\n%s", s.Context, err, tail(out, 2000))
		return
	}
	t.Logf("ssh server %s stopped and removed:\n%s", s.Context, strings.TrimSpace(out))
}

// Env is what a command needs to use the rig's ssh client: its folder first in PATH.
func (s *SSHD) Env() []string {
	return []string{"PATH=" + s.Path + string(os.PathListSeparator) + os.Getenv("PATH")}
}

// Throttle limits what the host sends into the namespace to rate (tc's units, "4mbit"), so
// that a transfer lasts long enough to be cut in the middle; "" lifts the limit.
func (s *SSHD) Throttle(t *testing.T, rate string) {
	t.Helper()
	args := []string{"qdisc", "del", "dev", s.link, "root"}
	if rate != "" {
		args = []string{"qdisc", "replace", "dev", s.link, "root", "tbf", "rate", rate, "burst", "32kbit", "latency", "400ms"}
	}
	if out, err := combined(context.Background(), "", nil, "tc", args...); err != nil && rate != "" {
		t.Fatalf("tc %s: %v\n%s", strings.Join(args, " "), err, out)
	}
}

// migrateSSHRig: a second engine with an ssh server in front, the test image on it, and the
// stack both sides see (the target's commands go to the engine's own socket: checking what it
// holds does not depend on the ssh connection under test).
func migrateSSHRig(t *testing.T, fixture string) (eng *Engine2, sshd *SSHD, src, tgt *Stack) {
	t.Helper()
	eng = StartEngine2(t)
	sshd = StartSSHD(t, eng)
	eng.LoadImage(t, pgImage)
	src = NewStack(t, fixture)
	src.Env = append(src.Env, sshd.Env()...)
	src.Up()
	return eng, sshd, src, eng.Stack(src)
}

// TestMigrateSSH: `migrate --to-context` over a docker context host=ssh://root@ADDRESS moves
// the whole deployment (the database, the app's named volume) to the engine behind the ssh
// server; the target's state equals the source's, both run.
func TestMigrateSSH(t *testing.T) {
	eng, sshd, src, tgt := migrateSSHRig(t, "custom")
	if host := strings.TrimSpace(src.MustDocker("context", "inspect", "--format", "{{.Endpoints.docker.Host}}", sshd.Context)); host != "ssh://root@"+sshd.Address {
		t.Fatalf("context %s: host %q, want ssh://root@%s", sshd.Context, host, sshd.Address)
	}
	want := src.state()
	running := src.runningServices(t)
	t0 := time.Now()
	r := src.migrate(RunOpts{}, "--to-context", sshd.Context)
	if r.Code != 0 {
		t.Fatalf("migrate --to-context %s (ssh): exit %d\n%s", sshd.Context, r.Code, r.Stderr)
	}
	t.Logf("migrate over ssh took %s:\n%s%s", time.Since(t0).Round(100*time.Millisecond), r.Stdout, tail(r.Stderr, 2000))
	assertSameState(t, "target after migrate over ssh", want, tgt.state())
	assertSameState(t, "source after migrate over ssh", want, src.state())
	if got := tgt.runningServices(t); got != running {
		t.Errorf("running services on the target: %q, want %q", got, running)
	}
	if got := src.runningServices(t); got != running {
		t.Errorf("running services on the source: %q, want %q", got, running)
	}
	assertNoHelpers(t, eng, src)
}

// TestMigrateSSHDataFolder: Echo's documented layout (a ./data bind folder beside the compose
// file) over ssh to a host with a project folder of its own (engine2.sh --private: the target's
// ./data is not the source's). The files land there, through helpers on the target.
func TestMigrateSSHDataFolder(t *testing.T) {
	src := NewStack(t, "seed")
	eng := StartEngine2(t, "--private", src.Dir)
	sshd := StartSSHD(t, eng)
	eng.LoadImage(t, pgImage)
	src.Env = append(src.Env, sshd.Env()...)
	src.Up()
	tgt := eng.Stack(src)
	there := filepath.Join(eng.dir, "private", src.DataDir())
	if _, err := os.Stat(there); !os.IsNotExist(err) {
		t.Fatalf("the target's ./data (%s) exists before the migrate: %v", there, err)
	}
	want := src.state()
	running := src.runningServices(t)
	// --no-copy: the stream goes to the target only, and nothing of it lands on the disk here.
	backups := filepath.Join(src.Dir, "backups")
	r := src.migrate(RunOpts{}, "--to-context", sshd.Context, "--no-copy")
	if r.Code != 0 {
		t.Fatalf("migrate --to-context %s --no-copy (ssh): exit %d\n%s", sshd.Context, r.Code, r.Stderr)
	}
	if strings.Contains(r.Stdout, "backup taken here") {
		t.Errorf("migrate --no-copy names a backup taken here:\n%s", r.Stdout)
	}
	// Folders and the empty lock files of the target's restore journal may stay; no bytes do.
	filepath.WalkDir(backups, func(path string, d os.DirEntry, err error) error {
		if info, ierr := os.Lstat(path); err == nil && ierr == nil && info.Mode().IsRegular() && info.Size() > 0 {
			t.Errorf("migrate --no-copy left %s (%d bytes) here", path, info.Size())
		}
		return nil
	})
	got := state{db: tgt.FingerprintDB(), files: FingerprintDir(t, there).Fingerprint()}
	assertSameState(t, "target after migrate over ssh", want, got)
	assertSameState(t, "source after migrate over ssh", want, src.state())
	if got := tgt.runningServices(t); got != running {
		t.Errorf("running services on the target: %q, want %q", got, running)
	}
	assertNoHelpers(t, eng, src)
}

// TestMigrateSSHBadTarget: a host that does not answer, a key the server refuses, a remote
// without the docker CLI. Each is one line naming the context and what went wrong, exit 2
// (nothing to roll back: nothing started), the target and the source as they were.
func TestMigrateSSHBadTarget(t *testing.T) {
	eng, sshd, src, _ := migrateSSHRig(t, "custom")
	want := src.state()
	running := src.runningServices(t)
	for _, c := range []struct {
		name, context string
		says          *regexp.Regexp
	}{
		{"no answer", sshd.Silent, regexp.MustCompile(`No route to host|timed out`)},
		{"key refused", sshd.Refused, regexp.MustCompile(`Permission denied \(publickey\)`)},
		{"no docker CLI", sshd.NoDocker, regexp.MustCompile(`docker: command not found`)},
	} {
		t.Run(c.name, func(t *testing.T) {
			t0 := time.Now()
			r := src.migrate(RunOpts{}, "--to-context", c.context)
			took := time.Since(t0)
			t.Logf("migrate --to-context %s: exit %d in %s\n%s", c.context, r.Code, took.Round(100*time.Millisecond), r.Stderr)
			if r.Code == 0 {
				t.Fatalf("migrate to %s succeeded", c.name)
			}
			assertOneErrorLine(t, r.Stderr, c.context, c.says)
			assertSourceKept(t, src, want, running)
			if entries, _ := os.ReadDir(filepath.Join(src.Dir, "backups")); len(entries) > 0 {
				t.Errorf("a migrate that never reached the target saved a backup: %v", entries)
			}
		})
	}
	if left := projectOn(t, eng, src); left != "" {
		t.Errorf("on the target after the refused migrations: %s; want nothing", left)
	}
}

// TestMigrateSSHCut: a cutover (--stop-source) whose ssh connection is killed while the target
// stages the backup (a throttled link makes the staging last). migrate fails with one line, the
// target is rolled back to nothing, the source keeps its state and its app runs again.
func TestMigrateSSHCut(t *testing.T) {
	eng, sshd, src, _ := migrateSSHRig(t, "custom")
	want := src.state()
	running := src.runningServices(t)
	sshd.Throttle(t, "2mbit")
	t.Cleanup(func() { sshd.Throttle(t, "") })

	r, killed := migrateAndCut(t, eng, src, sshd)
	sshd.Throttle(t, "")
	t.Logf("killed the plugin's ssh processes %v while the target staged; migrate: exit %d\n%s", killed, r.Code, r.Stderr)
	if len(killed) == 0 {
		t.Fatalf("the target never started staging, or no ssh process of the plugin was found then")
	}
	if r.Code == 0 {
		t.Fatalf("migrate succeeded though its ssh connection was killed mid-transfer")
	}
	assertOneErrorLine(t, r.Stderr, sshd.Context, regexp.MustCompile(`ssh connection to root@`+regexp.QuoteMeta(sshd.Address)+` was cut`))
	// Nor do the progress lines quote the ssh helper's wall.
	for _, noise := range []string{"docker.example.com", "make sure the URL is valid"} {
		if strings.Contains(r.Stderr, noise) {
			t.Errorf("migrate's output carries the ssh helper's own text (%q):\n%s", noise, r.Stderr)
		}
	}
	if left := projectOn(t, eng, src); left != "" {
		t.Errorf("on the target after the cut: %s; want nothing (rolled back)", left)
	}
	vols, err := eng.Docker("volume", "ls", "-q")
	if err != nil {
		t.Fatal(err)
	}
	if v := nonEmptyLines(vols); len(v) > 0 {
		t.Errorf("volumes on the target after the cut: %v; want none", v)
	}
	assertSourceKept(t, src, want, running)
}

// migrateAndCut runs migrate --stop-source to the ssh context and, once it says the target is staging the
// backup, kills every ssh process the plugin started towards the server: the connections in
// use then drop, as with a cable pulled; the ones opened later (the rollback's) work again.
func migrateAndCut(t *testing.T, eng *Engine2, src *Stack, sshd *SSHD) (Result, []int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), CommandTimeout)
	defer cancel()
	args := append(append([]string{"echobackup"}, src.ProjectArgs()...), "migrate", "--to-context", sshd.Context, "--stop-source")
	cmd := exec.CommandContext(ctx, "docker", args...)
	cmd.Dir = src.Dir
	cmd.Env = append(os.Environ(), src.Env...)
	var stdout bytes.Buffer
	cmd.Stdout = &stdout
	pipe, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	lines := make(chan string)
	go func() {
		sc := bufio.NewScanner(pipe)
		sc.Buffer(make([]byte, 64*1024), 1024*1024)
		for sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
	}()
	staged, stopPoll := make(chan struct{}), make(chan struct{})
	go pollStaging(eng, src, staged, stopPoll)
	var stderr strings.Builder
	var killed []int
	cut := func() {
		if killed != nil {
			return
		}
		// A moment for the transfer to begin, then the cut.
		time.Sleep(300 * time.Millisecond)
		killed = pluginSSH(sshd.Address)
		for _, p := range killed {
			syscall.Kill(p, syscall.SIGKILL)
		}
		if killed == nil {
			killed = []int{}
		}
	}
	// Whichever comes first: migrate says the target stages, or the target shows it does.
	for lines != nil {
		select {
		case line, ok := <-lines:
			if !ok {
				lines = nil
				continue
			}
			stderr.WriteString(line + "\n")
			if strings.Contains(line, "staging") {
				cut()
			}
		case <-staged:
			staged = nil
			cut()
		}
	}
	close(stopPoll)
	r := Result{Stdout: stdout.String()}
	if err := cmd.Wait(); err != nil {
		var exitErr *exec.ExitError
		if errors.As(err, &exitErr) && ctx.Err() == nil {
			r.Code = exitErr.ExitCode()
		} else {
			r.Code = -1
		}
	}
	r.Stderr = stderr.String()
	return r, killed
}

// pollStaging closes staged once the target holds the project's volumes and runs a helper of
// echo-backup for it: the restore has set up and is staging (the checks before run helpers
// too, but create no volume of the project).
func pollStaging(eng *Engine2, src *Stack, staged, stop chan struct{}) {
	for {
		select {
		case <-stop:
			return
		case <-time.After(200 * time.Millisecond):
		}
		vols, err1 := eng.Docker("volume", "ls", "-q", "--filter", "name="+src.Name+"_")
		helpers, err2 := eng.Docker("ps", "-q", "--filter", "status=running", "--filter", "label="+LabelEchoProject+"="+src.Name)
		if err1 == nil && err2 == nil && len(nonEmptyLines(vols)) > 0 && len(nonEmptyLines(helpers)) > 0 {
			close(staged)
			return
		}
	}
}

// pluginSSH: the ssh processes to addr whose parent is the plugin (the docker CLI's connection
// helper starts them, in a session of their own).
func pluginSSH(addr string) []int {
	var pids []int
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		cmd, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if err != nil {
			continue
		}
		args := strings.Split(strings.TrimRight(string(cmd), "\x00"), "\x00")
		if !strings.HasSuffix(args[0], "ssh") || !containsArg(args, addr) {
			continue
		}
		if parent := parentName(pid); parent == "docker-echobackup" || strings.HasPrefix(parent, "docker-echoback") {
			pids = append(pids, pid)
		}
	}
	return pids
}

func containsArg(args []string, s string) bool {
	for _, a := range args {
		if a == s {
			return true
		}
	}
	return false
}

func parentName(pid int) string {
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return ""
	}
	// pid (comm) state ppid …: comm may hold spaces and parentheses.
	f := strings.Fields(string(stat[strings.LastIndexByte(string(stat), ')')+1:]))
	if len(f) < 2 {
		return ""
	}
	comm, err := os.ReadFile("/proc/" + f[1] + "/comm")
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(comm))
}

// assertOneErrorLine: the failure is told in one line that names the context (and matches
// says): no Go stack, no wall of the ssh helper's own text.
func assertOneErrorLine(t *testing.T, stderr, context string, says *regexp.Regexp) {
	t.Helper()
	var errs []string
	for _, l := range strings.Split(stderr, "\n") {
		// Progress lines carry the seconds since the command started: "[  1.2s] …".
		if strings.TrimSpace(l) != "" && !progressLine.MatchString(l) {
			errs = append(errs, l)
		}
	}
	if len(errs) != 1 {
		t.Fatalf("want one error line, got %d:\n%s", len(errs), stderr)
	}
	line := errs[0]
	if !strings.Contains(line, `"`+context+`"`) {
		t.Errorf("the error does not name context %q: %s", context, line)
	}
	if says != nil && !says.MatchString(line) {
		t.Errorf("the error does not say %s: %s", says, line)
	}
	if len(line) > 400 {
		t.Errorf("the error line is %d characters long, a wall: %s", len(line), line)
	}
	for _, noise := range []string{"docker.example.com", "make sure the URL is valid", "dial-stdio", "stderr="} {
		if strings.Contains(line, noise) {
			t.Errorf("the error carries the ssh helper's own text (%q): %s", noise, line)
		}
	}
}

// assertSourceKept: the source holds what it did and runs what it ran.
func assertSourceKept(t *testing.T, src *Stack, want state, running string) {
	t.Helper()
	assertSameState(t, "source after a failed migrate", want, src.state())
	if got := src.runningServices(t); got != running {
		t.Errorf("running services on the source: %q, want %q", got, running)
	}
}
