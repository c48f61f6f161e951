package schedule

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/echo-backup/echo-backup/ping"
	"github.com/echo-backup/echo-backup/store"
)

func TestPingErrorsHideTheURL(t *testing.T) {
	for _, url := range []string{"http://127.0.0.1:1/SECRETUUID", "http://[::1:1/SECRETUUID", "http://127.0.0.1:1/%zzSECRETUUID"} {
		err := ping.Ping{URL: url, Tries: 1}.Start(context.Background())
		if err == nil || strings.Contains(err.Error(), "SECRETUUID") {
			t.Errorf("%s: %v", url, err)
		}
	}
}

func TestTrimLog(t *testing.T) {
	path := filepath.Join(t.TempDir(), LogName)
	line := strings.Repeat("x", 99) + "\n"
	if err := os.WriteFile(path, []byte(strings.Repeat(line, 30000)+"last\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	// The running job's output, as its shell opened it.
	out, err := os.OpenFile(path, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer out.Close()
	if err := TrimLog(path, 1<<20); err != nil {
		t.Fatal(err)
	}
	out.WriteString("after\n")
	b, _ := os.ReadFile(path)
	if len(b) > 1<<20+6 || len(b) < 1<<20-200 || !strings.HasPrefix(string(b), line) || !strings.HasSuffix(string(b), line+"last\nafter\n") {
		t.Errorf("log of %d bytes begins %q, ends %q", len(b), b[:20], b[len(b)-20:])
	}
	small := []byte("one\ntwo\n")
	os.WriteFile(path, small, 0o600)
	if err := TrimLog(path, 1<<20); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(path); string(b) != string(small) {
		t.Errorf("a short log changed: %q", b)
	}
	if err := TrimLog(filepath.Join(t.TempDir(), "none"), 10); err != nil {
		t.Errorf("no log yet: %v", err)
	}
}

func TestPrepareKeepsSecretsPrivate(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(LogPath(dir), []byte("old\n"), 0o644)
	if err := Prepare(dir, "https://hc.example/ping/uuid"); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{LogName, pingName} {
		if fi, err := os.Stat(filepath.Join(dir, name)); err != nil || fi.Mode().Perm() != 0o600 {
			t.Errorf("%s: %v %v", name, fi.Mode(), err)
		}
	}
	if url, err := ReadPing(dir); err != nil || url != "https://hc.example/ping/uuid" {
		t.Errorf("read back %q %v", url, err)
	}
	if b, _ := os.ReadFile(LogPath(dir)); string(b) != "old\n" {
		t.Errorf("prepare changed the log: %q", b)
	}
	// Installed again without --ping: no more pings.
	if err := Prepare(dir, ""); err != nil {
		t.Fatal(err)
	}
	if url, err := ReadPing(dir); err != nil || url != "" {
		t.Errorf("after install without a ping: %q %v", url, err)
	}
}

func TestRunJob(t *testing.T) {
	srv, hits := recorder(t, func(int) int { return 200 })
	pinger := ping.Ping{URL: srv.URL + "/uuid", Tries: 1}
	dir := t.TempDir()
	os.WriteFile(LogPath(dir), nil, 0o644) // as the shell's >> creates it
	var log strings.Builder
	err := RunJob(context.Background(), dir, pinger, &log, func(context.Context, *store.Lock) (string, string, error) {
		return "saved x", "/b/x.tar.zst", nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if h := hits(); len(h) != 2 || h[0].path != "/uuid/start" || h[1].path != "/uuid" || h[1].body != "saved x" {
		t.Errorf("pings %+v", h)
	}
	if r, _ := ReadLast(dir); r == nil || !r.OK || r.Backup != "/b/x.tar.zst" {
		t.Errorf("record %+v", r)
	}
	if fi, _ := os.Stat(LogPath(dir)); fi.Mode().Perm() != 0o600 {
		t.Errorf("log mode %v", fi.Mode())
	}

	// Another process holds the lock: skipped, nothing pinged or recorded.
	lock, err := os.OpenFile(filepath.Join(dir, ".echobackup.lock"), os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	if err := syscall.Flock(int(lock.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		t.Fatal(err)
	}
	before, _ := os.ReadFile(filepath.Join(dir, lastName))
	err = RunJob(context.Background(), dir, pinger, &log, func(context.Context, *store.Lock) (string, string, error) {
		t.Error("the work ran without the lock")
		return "", "", nil
	})
	lock.Close()
	after, _ := os.ReadFile(filepath.Join(dir, lastName))
	if !errors.Is(err, ErrSkipped) || len(hits()) != 2 || string(after) != string(before) || !strings.Contains(log.String(), "skipped: another") {
		t.Errorf("with the lock held: %v, %d pings, log:\n%s", err, len(hits()), log.String())
	}

	// A lock that cannot be taken at all is a failed run, recorded and pinged, not a skip.
	bad := t.TempDir()
	if err := os.Mkdir(filepath.Join(bad, ".echobackup.lock"), 0o700); err != nil {
		t.Fatal(err)
	}
	err = RunJob(context.Background(), bad, pinger, &log, func(context.Context, *store.Lock) (string, string, error) {
		t.Error("the work ran without the lock")
		return "", "", nil
	})
	h := hits()
	r, _ := ReadLast(bad)
	if err == nil || errors.Is(err, ErrSkipped) || len(h) != 3 || h[2].path != "/uuid/fail" || h[2].body == "" ||
		r == nil || r.OK || r.Error != h[2].body || r.Started.IsZero() || time.Since(r.Finished) > time.Minute {
		t.Errorf("unlockable folder: %v, pings %+v, record %+v", err, h, r)
	}

	// A failed run: recorded and pinged with the error.
	err = RunJob(context.Background(), dir, pinger, &log, func(context.Context, *store.Lock) (string, string, error) {
		return "", "", errors.New("pg_dump exited 1")
	})
	h = hits()
	if r, _ := ReadLast(dir); err == nil || r == nil || r.OK || r.Error != "pg_dump exited 1" || h[len(h)-1].path != "/uuid/fail" {
		t.Errorf("failed run: %v, %+v, pings %+v", err, r, h)
	}
}
