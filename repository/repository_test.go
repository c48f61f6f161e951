package repository

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// testData is reproducible, partly compressible data.
func testData(seed uint64, n int) []byte {
	rng := rand.New(rand.NewPCG(seed, seed))
	b := make([]byte, n)
	for i := 0; i < n; i += 4096 {
		end := min(i+4096, n)
		if (i/4096)%2 == 0 {
			for j := i; j < end; j++ {
				b[j] = byte(rng.Uint32())
			}
		} else {
			copy(b[i:end], bytes.Repeat([]byte("echo "), 1000))
		}
	}
	return b
}

func testTar(t *testing.T, files map[string][]byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for name, data := range files {
		if err := tw.WriteHeader(&tar.Header{Name: name, Mode: 0o644, Size: int64(len(data)), Format: tar.FormatPAX}); err != nil {
			t.Fatal(err)
		}
		tw.Write(data)
	}
	tw.Close()
	return buf.Bytes()
}

// writeBackup writes tarBytes and the streams concurrently, as save does.
func writeBackup(t *testing.T, ctx context.Context, r *Repository, project string, tarBytes []byte, streams map[string][]byte, labels map[string]string) Snapshot {
	t.Helper()
	b, err := r.NewBackup(ctx, project)
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	errs := make(chan error, len(streams)+1)
	wg.Go(func() {
		// small writes, as a tar writer makes them
		for rest := tarBytes; len(rest) > 0; {
			n := min(len(rest), 10000)
			if _, err := b.Tar().Write(rest[:n]); err != nil {
				errs <- err
				return
			}
			rest = rest[n:]
		}
	})
	for name, data := range streams {
		wg.Go(func() {
			w, err := b.Stream(name)
			if err != nil {
				errs <- err
				return
			}
			if _, err := io.Copy(w, bytes.NewReader(data)); err != nil {
				errs <- err
				return
			}
			errs <- w.Close()
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	defer b.Abort() // after Commit: does nothing
	created := time.Now()
	s, err := b.Commit(ctx, []byte(`{"format":1}`), created, labels)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func readAll(t *testing.T, open func() (io.ReadCloser, error)) []byte {
	t.Helper()
	rc, err := open()
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	b, err := io.ReadAll(rc)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func timed(t *testing.T, what string, fn func()) {
	t.Helper()
	start := time.Now()
	fn()
	t.Logf("%s took %v", what, time.Since(start).Round(time.Millisecond))
}

// roundTrip is the shared test of a repository, on a folder or on S3.
func roundTrip(t *testing.T, o Options) {
	ctx := context.Background()
	var pw string
	var err error
	timed(t, "Init", func() { pw, err = Init(ctx, o) })
	if err != nil {
		t.Fatal(err)
	}
	if o.Password == "" {
		if len(pw) < 43 {
			t.Fatalf("generated password too short: %d chars", len(pw))
		}
		o.Password = pw
	} else if pw != "" {
		t.Fatal("Init returned a password it did not generate")
	}
	if _, err := Init(ctx, o); !errors.Is(err, ErrExists) {
		t.Fatalf("second Init: want ErrExists, got %v", err)
	}
	wrong := o
	wrong.Password = "not the password"
	if _, err := Open(ctx, wrong); !errors.Is(err, ErrWrongPassword) {
		t.Fatalf("wrong password: want ErrWrongPassword, got %v", err)
	} else if strings.Contains(err.Error(), wrong.Password) {
		t.Fatalf("error shows the password: %v", err)
	}

	var r *Repository
	timed(t, "Open", func() { r, err = Open(ctx, o) })
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close(ctx)
	if strings.Contains(r.Address(), o.S3.SecretKey) && o.S3.SecretKey != "" {
		t.Fatal("Address shows the secret key")
	}

	tarBytes := testTar(t, map[string][]byte{"data/a.flac": testData(1, 3<<20), "data/b.txt": []byte("hello")})
	dump := testData(2, 8<<20)
	streams := map[string][]byte{"db/echo.dump": dump, "db/globals.sql": []byte("-- globals\n")}
	var s1 Snapshot
	timed(t, "first NewBackup+Commit (11 MB)", func() {
		s1 = writeBackup(t, ctx, r, "echo", tarBytes, streams, map[string]string{"reason": "test"})
	})
	time.Sleep(5 * time.Millisecond)
	var s2 Snapshot
	timed(t, "second identical NewBackup+Commit", func() {
		s2 = writeBackup(t, ctx, r, "echo", tarBytes, streams, nil)
	})
	other := writeBackup(t, ctx, r, "other", testTar(t, nil), nil, nil)

	list, err := r.List(ctx, "echo")
	if err != nil {
		t.Fatal(err)
	}
	if len(list) != 2 || list[0].ID != s2.ID || list[1].ID != s1.ID {
		t.Fatalf("List(echo) = %+v, want s2, s1", list)
	}
	if list[1].Labels["reason"] != "test" || list[1].Project != "echo" || list[1].Size != s1.Size || s1.Size < int64(len(dump)+len(tarBytes)) {
		t.Fatalf("listed snapshot %+v, committed %+v", list[1], s1)
	}
	if all, _ := r.List(ctx, ""); len(all) != 3 || all[0].ID != other.ID {
		t.Fatalf("List(all) = %+v", all)
	}
	if got, err := r.Find(ctx, "echo", "latest"); err != nil || got.ID != s2.ID {
		t.Fatalf("Find latest = %+v, %v", got, err)
	}
	if got, err := r.Find(ctx, "", s1.ID[:8]); err != nil || got.ID != s1.ID {
		t.Fatalf("Find prefix = %+v, %v", got, err)
	}
	if _, err := r.Find(ctx, "echo", "zzzz"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("Find unknown: %v", err)
	}

	if m, err := r.Manifest(ctx, s1.ID); err != nil || string(m) != `{"format":1}` {
		t.Fatalf("Manifest = %q, %v", m, err)
	}
	var got []byte
	timed(t, "OpenTar+read", func() { got = readAll(t, func() (io.ReadCloser, error) { return r.OpenTar(ctx, s1.ID) }) })
	if !bytes.Equal(got, tarBytes) {
		t.Fatal("files.tar differs")
	}
	timed(t, "OpenStream+read (8 MB)", func() {
		got = readAll(t, func() (io.ReadCloser, error) { return r.OpenStream(ctx, s1.ID, "db/echo.dump") })
	})
	if !bytes.Equal(got, dump) {
		t.Fatal("db/echo.dump differs")
	}
	if _, err := r.OpenStream(ctx, s1.ID, "db/nope"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("missing stream: %v", err)
	}
	if err := r.CheckContents(ctx, s1.ID); err != nil {
		t.Fatal(err)
	}

	if err := r.Pin(ctx, s1.ID, "keep"); err != nil {
		t.Fatal(err)
	}
	if err := r.RecordVerify(ctx, s1.ID, Verification{At: time.Now().Add(-time.Hour), Deep: false, OK: false}); err != nil {
		t.Fatal(err)
	}
	if err := r.RecordVerify(ctx, s1.ID, Verification{At: time.Now(), Deep: true, OK: true}); err != nil {
		t.Fatal(err)
	}
	p, err := r.Find(ctx, "echo", s1.ID)
	if err != nil {
		t.Fatal(err)
	}
	if len(p.Pins) != 1 || p.Pins[0] != "keep" || p.Verified == nil || !p.Verified.Deep || !p.Verified.OK {
		t.Fatalf("after Pin and RecordVerify: %+v (verified %+v)", p, p.Verified)
	}
	if err := r.Unpin(ctx, s1.ID); err != nil {
		t.Fatal(err)
	}
	if p, _ := r.Find(ctx, "echo", s1.ID); len(p.Pins) != 0 || p.Verified == nil {
		t.Fatalf("after Unpin: %+v", p)
	}

	st, err := r.Status(ctx)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("status: %+v", st)
	if st.Snapshots != 3 || st.DedupRatio <= 1 || st.LogicalBytes < 2*s1.Size {
		t.Fatalf("status %+v: want 3 snapshots and a dedup ratio > 1", st)
	}

	if err := r.Delete(ctx, s1.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := r.Find(ctx, "", s1.ID); !errors.Is(err, ErrNotFound) {
		t.Fatalf("deleted snapshot still found: %v", err)
	}
	if v, _ := r.verifications(ctx); len(v) != 0 {
		t.Fatalf("verify records left after Delete: %+v", v)
	}
	for _, full := range []bool{false, true} {
		res, err := r.Maintain(ctx, full, true)
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("maintenance: %+v", res)
	}
	if got := readAll(t, func() (io.ReadCloser, error) { return r.OpenStream(ctx, s2.ID, "db/echo.dump") }); !bytes.Equal(got, dump) {
		t.Fatal("db/echo.dump of the kept snapshot differs after maintenance")
	}
	st, err = r.Status(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if st.LastMaintained.IsZero() || st.LastFull.IsZero() {
		t.Fatalf("status after maintenance: %+v", st)
	}

	// A second connection, as from a second server, sees the history and may maintain.
	r2, err := Open(ctx, o)
	if err != nil {
		t.Fatal(err)
	}
	defer r2.Close(ctx)
	if l, err := r2.List(ctx, "echo"); err != nil || len(l) != 1 {
		t.Fatalf("second connection: %+v %v", l, err)
	}
	if _, err := r2.Maintain(ctx, false, false); err != nil {
		t.Fatal(err)
	}
}

func TestFolderRoundTrip(t *testing.T) {
	roundTrip(t, Options{Address: filepath.Join(t.TempDir(), "repo"), CacheDir: t.TempDir()})
}

func TestFolderGivenPassword(t *testing.T) {
	ctx := context.Background()
	o := Options{Address: "file://" + filepath.Join(t.TempDir(), "repo"), Password: "correct horse", CacheDir: t.TempDir()}
	if pw, err := Init(ctx, o); err != nil || pw != "" {
		t.Fatalf("Init = %q, %v", pw, err)
	}
	r, err := Open(ctx, o)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(r.configFile()); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("kopia config (it may hold S3 keys) left on disk after Open: %v", err)
	}
	if _, err := r.Maintain(ctx, false, false); err != nil {
		t.Fatal(err)
	}
	if err := r.Close(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(r.configDir); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("temporary folder left after Close: %v", err)
	}
}

func TestOpenEmptyFolder(t *testing.T) {
	ctx := context.Background()
	for _, dir := range []string{t.TempDir(), filepath.Join(t.TempDir(), "missing")} {
		_, err := Open(ctx, Options{Address: dir, Password: "x", CacheDir: t.TempDir()})
		if !errors.Is(err, ErrNotFound) || !strings.Contains(err.Error(), dir) {
			t.Fatalf("Open(%s): want ErrNotFound naming it, got %v", dir, err)
		}
	}
}

func TestMissingPack(t *testing.T) {
	ctx := context.Background()
	dir := filepath.Join(t.TempDir(), "repo")
	o := Options{Address: dir, Password: "pw", CacheDir: t.TempDir()}
	if _, err := Init(ctx, o); err != nil {
		t.Fatal(err)
	}
	r, err := Open(ctx, o)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close(ctx)
	dump := testData(3, 4<<20)
	s := writeBackup(t, ctx, r, "echo", testTar(t, nil), map[string][]byte{"db/echo.dump": dump}, nil)
	// p blobs hold file data; q blobs hold kopia's metadata (directories, manifests). The
	// filesystem storage shards blob IDs into folders: p/87c/94ef….f is blob p87c94ef….
	var packs []string
	filepath.WalkDir(filepath.Join(dir, "p"), func(path string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			packs = append(packs, path)
		}
		return nil
	})
	if len(packs) == 0 {
		t.Fatal("no p pack blob in the repository")
	}
	for _, p := range packs {
		if err := os.Remove(p); err != nil {
			t.Fatal(err)
		}
	}
	err = r.CheckContents(ctx, s.ID)
	if err == nil || !strings.Contains(err.Error(), "db/echo.dump") || !strings.Contains(err.Error(), "missing") {
		t.Fatalf("CheckContents: want an error naming db/echo.dump and the missing pack, got %v", err)
	}
	t.Logf("CheckContents: %v", err)
	// A fresh connection, so no cache can serve the data.
	r2, err := Open(ctx, Options{Address: dir, Password: "pw", CacheDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	defer r2.Close(ctx)
	rc, err := r2.OpenStream(ctx, s.ID, "db/echo.dump")
	if err == nil {
		_, err = io.Copy(io.Discard, rc)
		rc.Close()
	}
	if err == nil {
		t.Fatal("reading a stream whose pack is gone succeeded")
	}
	t.Logf("OpenStream: %v", err)
}

func TestFromEnv(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "pw")
	os.WriteFile(file, []byte("s3cret\n"), 0o644)
	env := map[string]string{"ECHOBACKUP_REPO": "s3://b/p", "ECHOBACKUP_PASSWORD_FILE": file, "ECHOBACKUP_PASSWORD": "other",
		"AWS_ACCESS_KEY_ID": "ak", "AWS_SECRET_ACCESS_KEY": "sk", "AWS_REGION": "eu-west-1", "AWS_ENDPOINT_URL": "http://127.0.0.1:9000"}
	lookup := func(k string) (string, bool) { v, ok := env[k]; return v, ok }
	_, err := FromEnv(lookup)
	if err == nil || !strings.Contains(err.Error(), "chmod 600 "+file) || strings.Contains(err.Error(), "s3cret") {
		t.Fatalf("0644 password file: want a chmod 600 hint, got %v", err)
	}
	os.Chmod(file, 0o600)
	o, err := FromEnv(lookup)
	if err != nil {
		t.Fatal(err)
	}
	if o.Password != "s3cret" || o.Address != "s3://b/p" || o.S3.SecretKey != "sk" || o.S3.Region != "eu-west-1" || o.S3.Endpoint != "http://127.0.0.1:9000" {
		t.Fatalf("FromEnv = %+v", o)
	}
	delete(env, "ECHOBACKUP_PASSWORD_FILE")
	if o, _ := FromEnv(lookup); o.Password != "other" {
		t.Fatalf("ECHOBACKUP_PASSWORD ignored: %q", o.Password)
	}
	if o, _ := FromEnv(func(string) (string, bool) { return "", false }); o.Address != "" {
		t.Fatalf("empty env: %+v", o)
	}
}

func TestParseAddress(t *testing.T) {
	for addr, want := range map[string]string{
		"/srv/backups":     "/srv/backups",
		"file:///srv/b/":   "/srv/b",
		"s3://bucket":      "s3://bucket/",
		"s3://bucket/echo": "s3://bucket/echo/",
		"s3://bucket/a/b/": "s3://bucket/a/b/",
	} {
		loc, err := parseAddress(addr)
		if err != nil || loc.String() != want {
			t.Errorf("parseAddress(%q) = %q, %v; want %q", addr, loc, err, want)
		}
	}
	for _, bad := range []string{"", "relative/dir", "sftp://host/x", "s3://", "file://host/x"} {
		if _, err := parseAddress(bad); err == nil {
			t.Errorf("parseAddress(%q) accepted", bad)
		}
	}
}

func TestBackupWriterMisuse(t *testing.T) {
	ctx := context.Background()
	o := Options{Address: filepath.Join(t.TempDir(), "repo"), Password: "pw", CacheDir: t.TempDir()}
	if _, err := Init(ctx, o); err != nil {
		t.Fatal(err)
	}
	r, err := Open(ctx, o)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close(ctx)
	b, err := r.NewBackup(ctx, "echo")
	if err != nil {
		t.Fatal(err)
	}
	for _, bad := range []string{"", "/abs", "../up", "a//b", "files.tar", "manifest.json"} {
		if _, err := b.Stream(bad); err == nil {
			t.Errorf("Stream(%q) accepted", bad)
		}
	}
	w, err := b.Stream("db/echo.dump")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := b.Stream("db/echo.dump"); err == nil {
		t.Error("the same stream twice accepted")
	}
	w.Write([]byte("partial"))
	if _, err := b.Commit(ctx, []byte("{}"), time.Now(), nil); err == nil || !strings.Contains(err.Error(), "db/echo.dump") {
		t.Fatalf("Commit with an open stream: %v", err)
	}

	// Abort leaves no snapshot behind.
	b, err = r.NewBackup(ctx, "echo")
	if err != nil {
		t.Fatal(err)
	}
	b.Tar().Write(testData(9, 1<<20))
	b.Abort()
	if l, err := r.List(ctx, ""); err != nil || len(l) != 0 {
		t.Fatalf("after Abort: %+v, %v", l, err)
	}
}
