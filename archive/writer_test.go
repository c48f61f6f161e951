package archive

import (
	"archive/tar"
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func addFile(t *testing.T, w *Writer, name, data string) {
	t.Helper()
	e := fileEntry(name, 0o644, []byte(data), 0)
	if err := w.Add(&e.hdr, strings.NewReader(data)); err != nil {
		t.Fatal(err)
	}
}

// onlyPartials fails unless every file in dir is a hidden .partial file.
func onlyPartials(t *testing.T, dir string) []string {
	t.Helper()
	names := listDir(t, dir)
	for _, n := range names {
		if !strings.HasPrefix(n, ".") || !strings.HasSuffix(n, ".partial") {
			t.Errorf("unexpected file %q in %v", n, names)
		}
	}
	return names
}

func TestPartialFiles(t *testing.T) {
	dir := t.TempDir()
	w, err := Create(filepath.Join(dir, "b.tar.zst"), Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Abort()
	if _, err := w.AddStream("db.sql", 0o600, baseTime, strings.NewReader("dump")); err != nil {
		t.Fatal(err)
	}
	names := onlyPartials(t, dir)
	if len(names) != 2 {
		t.Fatalf("want the archive and one side file, have %v", names)
	}
	for _, n := range names {
		fi, _ := os.Stat(filepath.Join(dir, n))
		if fi.Mode().Perm() != 0o600 {
			t.Errorf("%s has mode %v, want 0600", n, fi.Mode().Perm())
		}
	}
}

func TestAbortRemovesEverything(t *testing.T) {
	dir := t.TempDir()
	w, err := Create(filepath.Join(dir, "b.tar.zst"), Options{})
	if err != nil {
		t.Fatal(err)
	}
	addFile(t, w, "files/a", "aaa")
	if _, err := w.AddStream("db1.sql", 0o600, baseTime, strings.NewReader("dump")); err != nil {
		t.Fatal(err)
	}
	// A stream still running when Abort comes.
	pr, pw := io.Pipe()
	started := make(chan struct{})
	done := make(chan error)
	go func() {
		_, err := w.AddStream("db2.sql", 0o600, baseTime, io.TeeReader(pr, closeOnce(started)))
		done <- err
	}()
	pw.Write([]byte("partial dump"))
	<-started
	if err := w.Abort(); err != nil {
		t.Fatal(err)
	}
	pw.Close()
	if err := <-done; err == nil {
		t.Error("AddStream running across Abort succeeded")
	}
	if names := listDir(t, dir); len(names) != 0 {
		t.Errorf("Abort left %v", names)
	}
	if err := w.Abort(); err != nil {
		t.Errorf("second Abort: %v", err)
	}
	if err := w.Add(&tar.Header{Typeflag: tar.TypeDir, Name: "x"}, nil); err == nil {
		t.Error("Add after Abort succeeded")
	}
	if err := w.Commit(&Manifest{}); err == nil {
		t.Error("Commit after Abort succeeded")
	}
}

// closeOnce is a writer that closes ch on its first write.
type closeOnceWriter struct{ ch chan struct{} }

func closeOnce(ch chan struct{}) io.Writer { return &closeOnceWriter{ch: ch} }

func (c *closeOnceWriter) Write(p []byte) (int, error) {
	if c.ch != nil {
		close(c.ch)
		c.ch = nil
	}
	return len(p), nil
}

func TestAbortAfterCommitKeepsBackup(t *testing.T) {
	path := tempPath(t, "b.tar.zst")
	w, err := Create(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	addFile(t, w, "files/a", "aaa")
	if err := w.Commit(&Manifest{}); err != nil {
		t.Fatal(err)
	}
	if err := w.Abort(); err != nil {
		t.Fatal(err)
	}
	if _, err := Walk(path, nil); err != nil {
		t.Fatalf("backup damaged by Abort after Commit: %v", err)
	}
	if names := listDir(t, filepath.Dir(path)); len(names) != 1 {
		t.Errorf("folder holds %v", names)
	}
}

// TestCrashLeavesOnlyPartial runs a writer in a child process that dies
// before Commit.
func TestCrashLeavesOnlyPartial(t *testing.T) {
	if dir := os.Getenv("ARCHIVE_TEST_CRASH_DIR"); dir != "" {
		crashingWriter(dir)
		return
	}
	dir := t.TempDir()
	cmd := exec.Command(os.Args[0], "-test.run=^TestCrashLeavesOnlyPartial$")
	cmd.Env = append(os.Environ(), "ARCHIVE_TEST_CRASH_DIR="+dir)
	out, err := cmd.CombinedOutput()
	var exit *exec.ExitError
	if !errors.As(err, &exit) || exit.ExitCode() != 3 {
		t.Fatalf("child: %v\n%s", err, out)
	}
	names := onlyPartials(t, dir)
	if len(names) == 0 {
		t.Fatal("the crashed writer left nothing at all")
	}
	for _, n := range names {
		if _, err := ReadManifest(filepath.Join(dir, n)); err == nil {
			t.Errorf("%s reads as a backup", n)
		}
	}
}

func crashingWriter(dir string) {
	w, err := Create(filepath.Join(dir, "crash.tar.zst"), Options{})
	if err != nil {
		os.Exit(1)
	}
	data := randomBytes(4, 3<<20)
	hdr := &tar.Header{Typeflag: tar.TypeReg, Name: "files/big", Size: int64(len(data)), Mode: 0o644}
	if w.Add(hdr, bytes.NewReader(data)) != nil {
		os.Exit(1)
	}
	if _, err := w.AddStream("db.sql", 0o600, time.Now(), bytes.NewReader(data)); err != nil {
		os.Exit(1)
	}
	os.Exit(3) // no Commit, no Abort: the process dies here
}

func TestCreateRefusesExisting(t *testing.T) {
	path := tempPath(t, "b.tar.zst")
	os.WriteFile(path, []byte("precious"), 0o600)
	if _, err := Create(path, Options{}); !errors.Is(err, fs.ErrExist) {
		t.Fatalf("Create over an existing file: %v", err)
	}
	if names := listDir(t, filepath.Dir(path)); len(names) != 1 {
		t.Errorf("folder holds %v", names)
	}
}

func TestCommitRefusesOverwrite(t *testing.T) {
	path := tempPath(t, "b.tar.zst")
	w, err := Create(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	addFile(t, w, "files/a", "aaa")
	os.WriteFile(path, []byte("precious"), 0o600) // appears while the backup runs
	if err := w.Commit(&Manifest{}); !errors.Is(err, fs.ErrExist) {
		t.Fatalf("Commit over an existing file: %v", err)
	}
	if data, _ := os.ReadFile(path); string(data) != "precious" {
		t.Fatalf("existing file overwritten: %q", data)
	}
	if err := w.Abort(); err != nil {
		t.Fatal(err)
	}
	if names := listDir(t, filepath.Dir(path)); len(names) != 1 {
		t.Errorf("folder holds %v", names)
	}
}

func TestManifestTooLarge(t *testing.T) {
	path := tempPath(t, "b.tar.zst")
	w, err := Create(path, Options{Reserve: minReserve})
	if err != nil {
		t.Fatal(err)
	}
	// Random names do not compress, so the manifest outgrows 4 KiB.
	r := rand.New(rand.NewPCG(1, 2))
	for i := range 200 {
		name := fmt.Sprintf("files/%d-%x", i, r.Uint64())
		addFile(t, w, name, name) // distinct content: distinct, incompressible sha256s
	}
	if err := w.Commit(&Manifest{}); !errors.Is(err, ErrManifestTooLarge) {
		t.Fatalf("Commit: %v, want ErrManifestTooLarge", err)
	}
	if _, err := os.Stat(path); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("final file exists after a failed Commit: %v", err)
	}
	if err := w.Commit(&Manifest{}); err == nil {
		t.Error("second Commit succeeded")
	}
	if err := w.Abort(); err != nil {
		t.Fatal(err)
	}
	if names := listDir(t, filepath.Dir(path)); len(names) != 0 {
		t.Errorf("folder holds %v", names)
	}
}

func TestOptionsValidation(t *testing.T) {
	for _, o := range []Options{{Reserve: 100}, {Reserve: maxReserve + 1}, {Level: 99}, {StreamLevel: -1}} {
		if w, err := Create(tempPath(t, "b.tar.zst"), o); err == nil {
			w.Abort()
			t.Errorf("Create accepted %+v", o)
		}
	}
}

func TestAddRefusesBadMembers(t *testing.T) {
	path := tempPath(t, "b.tar.zst")
	w, err := Create(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Abort()
	addFile(t, w, "files/a", "aaa")
	sym := &tar.Header{Typeflag: tar.TypeSymlink, Name: "files/link", Linkname: "a"}
	if err := w.Add(sym, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := w.AddStream("db.sql", 0o600, baseTime, strings.NewReader("dump")); err != nil {
		t.Fatal(err)
	}
	bad := []tar.Header{
		{Typeflag: tar.TypeReg, Name: "/etc/passwd"},
		{Typeflag: tar.TypeReg, Name: "../x"},
		{Typeflag: tar.TypeReg, Name: "files/../../x"},
		{Typeflag: tar.TypeReg, Name: "files/.."},
		{Typeflag: tar.TypeReg, Name: ""},
		{Typeflag: tar.TypeReg, Name: "."},
		{Typeflag: tar.TypeDir, Name: "./"},
		{Typeflag: tar.TypeReg, Name: "manifest.json"},
		{Typeflag: tar.TypeReg, Name: "a\x00b"},
		{Typeflag: tar.TypeReg, Name: "files/a"},      // duplicate
		{Typeflag: tar.TypeDir, Name: "files/a/"},     // duplicate as a folder
		{Typeflag: tar.TypeReg, Name: "./files//a"},   // duplicate once cleaned
		{Typeflag: tar.TypeReg, Name: "db.sql"},       // taken by AddStream
		{Typeflag: tar.TypeReg, Name: "files/link/x"}, // beneath a symlink
		{Typeflag: tar.TypeSymlink, Name: "files"},    // symlink over a folder in use
		{Typeflag: tar.TypeSymlink, Name: "files/empty-link"},
		{Typeflag: tar.TypeLink, Name: "files/h1", Linkname: "files/missing"},
		{Typeflag: tar.TypeLink, Name: "files/h2", Linkname: "db.sql"}, // lands after this member
		{Typeflag: tar.TypeLink, Name: "files/h3", Linkname: "../etc/passwd"},
		{Typeflag: tar.TypeDir, Name: "files/d/", Size: 5},
		{Typeflag: tar.TypeReg, Name: "files/neg", Size: -1},
		{Typeflag: tar.TypeReg, Name: "files/nil-reader", Size: 3},
		{Typeflag: tar.TypeXGlobalHeader, Name: "files/g"},
		{Typeflag: tar.TypeGNUSparse, Name: "files/s"},
	}
	for _, h := range bad {
		if err := w.Add(&h, nil); err == nil {
			t.Errorf("Add accepted %q (type %q)", h.Name, h.Typeflag)
		}
	}
	// Refusals happen before anything is written: the archive is still good.
	hard := &tar.Header{Typeflag: tar.TypeLink, Name: "files/hard", Linkname: "files/a"}
	if err := w.Add(hard, nil); err != nil {
		t.Fatal(err)
	}
	addFile(t, w, "./files//b", "bbb")
	m := &Manifest{}
	if err := w.Commit(m); err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, mem := range m.Members {
		names = append(names, mem.Name)
	}
	if got := strings.Join(names, " "); got != "files/a files/link files/hard files/b db.sql" {
		t.Errorf("members: %s", got)
	}
	if _, err := Walk(path, nil); err != nil {
		t.Fatal(err)
	}
}

func TestAddSizeMismatchIsFatal(t *testing.T) {
	for _, tc := range []struct {
		name string
		data string
	}{{"short", "ab"}, {"long", "abcd"}} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			w, err := Create(filepath.Join(dir, "b.tar.zst"), Options{})
			if err != nil {
				t.Fatal(err)
			}
			hdr := &tar.Header{Typeflag: tar.TypeReg, Name: "files/x", Size: 3}
			if err := w.Add(hdr, strings.NewReader(tc.data)); err == nil {
				t.Fatal("Add accepted content of the wrong size")
			}
			e := fileEntry("files/y", 0o644, []byte("y"), 0)
			if err := w.Add(&e.hdr, bytes.NewReader(e.data)); err == nil {
				t.Error("Add after a broken member succeeded")
			}
			if err := w.Commit(&Manifest{}); err == nil {
				t.Error("Commit after a broken member succeeded")
			}
			if err := w.Abort(); err != nil {
				t.Fatal(err)
			}
			if names := listDir(t, dir); len(names) != 0 {
				t.Errorf("folder holds %v", names)
			}
		})
	}
}

// failingReader yields some data, then an error, like a pg_dump that dies.
type failingReader struct{ n int }

func (f *failingReader) Read(p []byte) (int, error) {
	if f.n <= 0 {
		return 0, errors.New("pg_dump: connection lost")
	}
	n := min(len(p), f.n)
	f.n -= n
	return n, nil
}

func TestAddStreamFailureKeepsWriter(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "b.tar.zst")
	w, err := Create(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.AddStream("db.sql", 0o600, baseTime, &failingReader{n: 1 << 20}); err == nil {
		t.Fatal("AddStream hid the reader's error")
	}
	if names := onlyPartials(t, dir); len(names) != 1 {
		t.Errorf("the failed stream left a side file: %v", names)
	}
	if _, err := w.AddStream("db.sql", 0o600, baseTime, strings.NewReader("retry")); err != nil {
		t.Fatalf("retrying the name: %v", err)
	}
	addFile(t, w, "files/a", "aaa")
	if err := w.Commit(&Manifest{}); err != nil {
		t.Fatal(err)
	}
	if names := listDir(t, dir); len(names) != 1 {
		t.Errorf("folder holds %v after Commit", names)
	}
	if _, err := Walk(path, nil); err != nil {
		t.Fatal(err)
	}
}

func TestCommitWaitsForStreams(t *testing.T) {
	path := tempPath(t, "b.tar.zst")
	w, err := Create(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	pr, pw := io.Pipe()
	started := make(chan struct{})
	done := make(chan error)
	go func() {
		_, err := w.AddStream("db.sql", 0o600, baseTime, io.TeeReader(pr, closeOnce(started)))
		done <- err
	}()
	pw.Write([]byte("COPY items FROM stdin;\n"))
	<-started
	if err := w.Commit(&Manifest{}); err == nil || !strings.Contains(err.Error(), "still running") {
		t.Fatalf("Commit during AddStream: %v", err)
	}
	pw.Close()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if err := w.Commit(&Manifest{}); err != nil {
		t.Fatalf("Commit after the stream ended: %v", err)
	}
	if _, err := w.AddStream("late.sql", 0o600, baseTime, strings.NewReader("x")); err == nil {
		t.Error("AddStream after Commit succeeded")
	}
	if _, err := Walk(path, nil); err != nil {
		t.Fatal(err)
	}
}

func TestCommitFillsCreated(t *testing.T) {
	path := tempPath(t, "b.tar.zst")
	w, err := Create(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	m := &Manifest{Format: 99, Members: []Member{{Name: "stale"}}}
	if err := w.Commit(m); err != nil {
		t.Fatal(err)
	}
	if m.Format != FormatVersion || m.Created.IsZero() || len(m.Members) != 0 {
		t.Errorf("manifest after Commit: %+v", m)
	}
}
