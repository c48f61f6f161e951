package archive

import (
	"archive/tar"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

var baseTime = time.Date(2023, 5, 1, 12, 34, 56, 0, time.UTC)

// entry is one member the tests add, with the content they expect back.
type entry struct {
	hdr  tar.Header
	data []byte
}

func randomBytes(seed uint64, n int) []byte {
	b := make([]byte, n)
	r := rand.NewChaCha8([32]byte{byte(seed), byte(seed >> 8)})
	r.Read(b)
	return b
}

// textBytes is compressible, log-like content.
func textBytes(n int) []byte {
	var buf bytes.Buffer
	for i := 0; buf.Len() < n; i++ {
		buf.WriteString("2023-05-01T12:34:56Z INFO request served path=/api/items/")
		buf.WriteString(strings.Repeat("x", i%17))
		buf.WriteString(" status=200\n")
	}
	return buf.Bytes()[:n]
}

func dirEntry(name string, mode int64, uid, gid int) entry {
	return entry{hdr: tar.Header{Typeflag: tar.TypeDir, Name: name, Mode: mode, Uid: uid, Gid: gid, ModTime: baseTime.Add(time.Hour)}}
}

func fileEntry(name string, mode int64, data []byte, age time.Duration) entry {
	return entry{hdr: tar.Header{Typeflag: tar.TypeReg, Name: name, Mode: mode, Size: int64(len(data)),
		Uid: 1000, Gid: 1001, Uname: "app", Gname: "app", ModTime: baseTime.Add(-age)}, data: data}
}

func linkEntry(name, target string) entry {
	return entry{hdr: tar.Header{Typeflag: tar.TypeSymlink, Name: name, Linkname: target, Mode: 0o777, ModTime: baseTime}}
}

// sampleEntries covers the kinds of members a volume backup holds.
func sampleEntries() []entry {
	long := "files/data/" + strings.Repeat("long-folder-name/", 6) + "file-with-a-long-name.txt"
	return []entry{
		dirEntry("files/", 0o755, 0, 0),
		dirEntry("files/data/", 0o750, 1000, 1001),
		dirEntry("files/data/empty/", 0o700, 1000, 1001),
		fileEntry("files/data/a.txt", 0o644, []byte("hello\n"), time.Minute),
		fileEntry("files/data/zero.bin", 0o600, nil, time.Hour),
		fileEntry("files/data/block512", 0o644, randomBytes(1, 512), 0),
		fileEntry("files/data/block513", 0o644, randomBytes(2, 513), 0),
		fileEntry("files/data/random.bin", 0o640, randomBytes(3, 200<<10), 24*time.Hour),
		fileEntry("files/data/text.log", 0o644, textBytes(1<<20), 0),
		fileEntry("files/data/run.sh", 0o755, []byte("#!/bin/sh\necho hi\n"), 0),
		fileEntry("files/data/setuid", 0o4755, []byte("x"), 0),
		linkEntry("files/data/link", "a.txt"),
		linkEntry("files/data/abs-link", "/etc/hostname"),
		dirEntry(path2dir(long), 0o755, 0, 0),
		fileEntry(long, 0o644, []byte("long\n"), 0),
		fileEntry("files/data/ünïcödé.txt", 0o644, []byte("utf-8\n"), 0),
		fileEntry("files/big-ids", 0o644, []byte("ids\n"), 0),
	}
}

func path2dir(name string) string { return name[:strings.LastIndex(name, "/")+1] }

// streamData is what the test "database dump" produces.
var streamData = textBytes(3<<20 + 77)

// writeSample writes sampleEntries plus a database stream that runs while
// the files are added. It returns the entries in archive order.
func writeSample(t testing.TB, path string, opts Options) ([]entry, *Manifest) {
	t.Helper()
	w, err := Create(path, opts)
	if err != nil {
		t.Fatal(err)
	}
	entries := sampleEntries()
	entries[len(entries)-1].hdr.Uid = 1 << 22 // too big for USTAR's octal field: forces PAX
	mem, streamErr := addWhileStreaming(t, w, entries, streamData)
	if streamErr != nil {
		t.Fatal(streamErr)
	}
	if mem.Size != int64(len(streamData)) || mem.SHA256 != sha(streamData) {
		t.Fatalf("AddStream returned %+v", mem)
	}
	m := sampleManifest()
	if err := w.Commit(m); err != nil {
		t.Fatal(err)
	}
	entries = append(entries, entry{hdr: tar.Header{Typeflag: tar.TypeReg, Name: "database/dump.sql",
		Mode: 0o600, ModTime: baseTime, Size: int64(len(streamData))}, data: streamData})
	return entries, m
}

// addWhileStreaming adds entries to w while a "pg_dump" streams data into AddStream: half of it
// before the files go in, the rest after, as a real dump runs beside the files.
func addWhileStreaming(t testing.TB, w *Writer, entries []entry, data []byte) (Member, error) {
	t.Helper()
	halfway := make(chan struct{})
	filesDone := make(chan struct{})
	pr, pw := io.Pipe()
	go func() {
		pw.Write(data[:len(data)/2])
		close(halfway)
		<-filesDone
		pw.Write(data[len(data)/2:])
		pw.Close()
	}()
	var wg sync.WaitGroup
	var streamErr error
	var mem Member
	wg.Add(1)
	go func() {
		defer wg.Done()
		mem, streamErr = w.AddStream("database/dump.sql", 0o600, baseTime, pr)
	}()
	<-halfway
	for _, e := range entries {
		if err := w.Add(&e.hdr, bytes.NewReader(e.data)); err != nil {
			t.Fatal(err)
		}
	}
	close(filesDone)
	wg.Wait()
	return mem, streamErr
}

func sampleManifest() *Manifest {
	return &Manifest{
		Tool:    Tool{Name: "echo-backup", Version: "test"},
		Created: baseTime,
		Host:    "testhost",
		Project: Project{Name: "echo", WorkingDir: "/srv/echo", ConfigFiles: []string{"/srv/echo/compose.yaml"},
			Services: []Service{{Name: "db", Role: "database", Image: "postgres:16", ImageID: "sha256:abc", Running: true}}},
		Database: &Database{Service: "db", Name: "echo", User: "echo", ServerVersion: "16.2", PgDumpVersion: "16.2",
			Member: "database/dump.sql", Tables: []Table{{Schema: "public", Name: "items", Rows: 40}, {Schema: "public", Name: "users", Rows: 2}}},
		Sources: []Source{{Name: "data", Kind: KindBind, Path: "/srv/echo/data", Target: "/data", Member: "files/data/"}},
		Labels:  map[string]string{"pinned": "pre-restore"},
	}
}

func sha(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

// writeSmall writes a quick archive for corruption tests.
func writeSmall(t testing.TB, path string, opts Options) {
	t.Helper()
	w, err := Create(path, opts)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range []entry{
		dirEntry("files/", 0o755, 0, 0),
		fileEntry("files/a.txt", 0o644, []byte("hello, world\n"), 0),
		fileEntry("files/b.bin", 0o644, randomBytes(9, 700), 0),
		linkEntry("files/c", "a.txt"),
	} {
		if err := w.Add(&e.hdr, bytes.NewReader(e.data)); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := w.AddStream("database/dump.sql", 0o600, baseTime, strings.NewReader("CREATE TABLE t();\n")); err != nil {
		t.Fatal(err)
	}
	if err := w.Commit(sampleManifest()); err != nil {
		t.Fatal(err)
	}
}

func mustVerifyError(t testing.TB, err error, what string) *VerifyError {
	t.Helper()
	var ve *VerifyError
	if !errors.As(err, &ve) {
		t.Fatalf("%s: Walk returned %v, want a *VerifyError", what, err)
	}
	return ve
}

func haveTools(t *testing.T, tools ...string) {
	t.Helper()
	for _, tool := range tools {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("%s not installed", tool)
		}
	}
}

func run(t *testing.T, name string, args ...string) string {
	t.Helper()
	cmd := exec.Command(name, args...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, stderr.String())
	}
	if stderr.Len() > 0 && name == "tar" {
		t.Errorf("%s %s wrote to stderr:\n%s", name, strings.Join(args, " "), stderr.String())
	}
	return stdout.String()
}

func listDir(t testing.TB, dir string) []string {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range ents {
		names = append(names, e.Name())
	}
	return names
}

func copyFile(t testing.TB, src, dst string) {
	t.Helper()
	data, err := os.ReadFile(src)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(dst, data, 0o600); err != nil {
		t.Fatal(err)
	}
}

func tempPath(t testing.TB, name string) string {
	return filepath.Join(t.TempDir(), name)
}
