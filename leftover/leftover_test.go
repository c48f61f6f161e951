package leftover

import (
	"bufio"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
)

func TestOurs(t *testing.T) {
	ours := []string{
		".echo-20261201T100000.123Z.tar.zst.123456.partial",       // archive.Create
		".echo-20261201T100000.123Z.tar.zst.stream.98765.partial", // a side stream
		".stdout-123.partial", ".stdin-456.tar.zst.partial", // spools
		".echobackup-xfer-789",                               // transfer folder
		".echo-20261201T100000.123Z.tar.zst.verified.42.tmp", // a record being written
	}
	notOurs := []string{
		"echo-20261201T100000.123Z.tar.zst", "echo-20261201T100000.123Z.tar.zst.verified",
		".echobackup.lock", "schedule.log", ".schedule.ping", "notes.partial", ".partial",
		".echobackup-xfer-", ".bashrc.tmp", ".", "..", "restore-journal.json",
	}
	for _, n := range ours {
		if !Ours(n) {
			t.Errorf("%q is not taken for ours", n)
		}
	}
	for _, n := range notOurs {
		if Ours(n) {
			t.Errorf("%q is taken for ours", n)
		}
	}
}

// An entry whose owner still runs stays, one whose owner was killed goes, with the owner a
// separate process as in real use; what is not ours stays whatever.
func TestSweepOwnerInAnotherProcess(t *testing.T) {
	dir := t.TempDir()
	cmd := exec.Command(os.Args[0], "-test.run=^TestOwnerProcess$")
	cmd.Env = append(os.Environ(), "LEFTOVER_OWNER_DIR="+dir)
	stdin, _ := cmd.StdinPipe()
	stdout, _ := cmd.StdoutPipe()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Process.Kill()
	line, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil || strings.TrimSpace(line) != "ready" {
		t.Fatalf("owner process: %q, %v", line, err)
	}
	keep := filepath.Join(dir, "echo-20261201T100000.000Z.tar.zst")
	os.WriteFile(keep, []byte("a backup"), 0o600)
	os.WriteFile(filepath.Join(dir, "notes.partial"), nil, 0o600)

	removed, err := Sweep(dir)
	if err != nil || len(removed) != 0 {
		t.Fatalf("with the owner alive: removed %v, %v", removed, err)
	}
	if n := len(ourEntries(t, dir)); n != 3 {
		t.Fatalf("%d of the owner's 3 entries are there", n)
	}
	cmd.Process.Signal(syscall.SIGKILL)
	cmd.Wait()
	stdin.Close()
	removed, err = Sweep(dir)
	if err != nil || len(removed) != 3 {
		t.Fatalf("after the owner was killed: removed %v, %v", removed, err)
	}
	if left := ourEntries(t, dir); len(left) != 0 {
		t.Errorf("left %v", left)
	}
	for _, n := range []string{keep, filepath.Join(dir, "notes.partial")} {
		if _, err := os.Stat(n); err != nil {
			t.Errorf("%s is gone", n)
		}
	}
}

// TestOwnerProcess is the owner for TestSweepOwnerInAnotherProcess: a partial file, a spool
// folder and a transfer folder with a FIFO in it, held until it is killed.
func TestOwnerProcess(t *testing.T) {
	dir := os.Getenv("LEFTOVER_OWNER_DIR")
	if dir == "" {
		t.Skip("run by TestSweepOwnerInAnotherProcess")
	}
	f, err := CreateTemp(dir, ".echo.tar.zst.*.partial")
	if err != nil {
		t.Fatal(err)
	}
	f.WriteString("half an archive")
	if _, _, err := MkdirTemp(dir, ".stdout-*.partial"); err != nil {
		t.Fatal(err)
	}
	x, _, err := MkdirTemp(dir, ".echobackup-xfer-")
	if err != nil {
		t.Fatal(err)
	}
	if err := syscall.Mkfifo(filepath.Join(x, "dump"), 0o600); err != nil {
		t.Fatal(err)
	}
	os.Stdout.WriteString("ready\n")
	os.Stdin.Read(make([]byte, 1)) // until killed
}

// In one process, a second descriptor's exclusive lock conflicts with the owner's shared one
// as another process's would; and this process never sweeps what it holds.
func TestSweepKeepsOwnEntries(t *testing.T) {
	dir := t.TempDir()
	f, err := CreateTemp(dir, ".echo.tar.zst.*.partial")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	d, release, err := MkdirTemp(dir, ".echobackup-xfer-")
	if err != nil {
		t.Fatal(err)
	}
	if r, err := sweepOne(f.Name()); r != nil || err != nil {
		t.Errorf("own file: %v, %v", r, err)
	}
	held = map[string]int{} // forget: now only the flock protects them
	for _, p := range []string{f.Name(), d} {
		if r, err := sweepOne(p); r != nil || err != nil {
			t.Errorf("%s with its lock held: %v, %v", p, r, err)
		}
	}
	release()
	f.Close()
	removed, err := Sweep(dir)
	if err != nil || len(removed) != 2 {
		t.Errorf("once released: %v, %v", removed, err)
	}
}

// A leftover created by an echobackup from before these locks has no lock: it goes.
func TestSweepUnlockedLeftover(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, ".echo.tar.zst.1.partial"), make([]byte, 1000), 0o600)
	removed, err := Sweep(dir)
	if err != nil || len(removed) != 1 || removed[0].Size != 1000 {
		t.Errorf("removed %v, %v", removed, err)
	}
}

func ourEntries(t *testing.T, dir string) []string {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range ents {
		if Ours(e.Name()) {
			out = append(out, e.Name())
		}
	}
	slices.Sort(out)
	return out
}
