package archive

import (
	"archive/tar"
	"bytes"
	"crypto/rand"
	"errors"
	"io"
	"os"
	"path/filepath"
	"testing"
	"time"
)

func writeWithStreams(t *testing.T, streams map[string][]byte, order []string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "s.tar.zst")
	w, err := Create(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	body := make([]byte, 100000)
	rand.Read(body)
	if err := w.Add(&tar.Header{Name: "files/a", Mode: 0o644, Size: int64(len(body)), Typeflag: tar.TypeReg}, bytes.NewReader(body)); err != nil {
		t.Fatal(err)
	}
	for _, name := range order {
		if _, err := w.AddStream(name, 0o600, time.Now(), bytes.NewReader(streams[name])); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Commit(&Manifest{}); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestOpenStream(t *testing.T) {
	dump := make([]byte, 3*1024*1024+77) // not a multiple of 512: a padding frame follows
	rand.Read(dump)
	other := []byte("exactly-----512" + string(bytes.Repeat([]byte("x"), 497)))
	path := writeWithStreams(t, map[string][]byte{"db/first": other, "db/echo.dump": dump}, []string{"db/first", "db/echo.dump"})
	for name, want := range map[string][]byte{"db/first": other, "db/echo.dump": dump} {
		s, err := OpenStream(path, name)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		got, err := io.ReadAll(s)
		s.Close()
		if err != nil || !bytes.Equal(got, want) {
			t.Errorf("%s: %d bytes, err %v", name, len(got), err)
		}
	}
	if _, err := OpenStream(path, "files/a"); !errors.Is(err, ErrNoStream) {
		t.Errorf("a main-body member as a stream: %v", err)
	}
}

func TestOpenStreamDetectsDamage(t *testing.T) {
	dump := make([]byte, 2*1024*1024)
	rand.Read(dump)
	path := writeWithStreams(t, map[string][]byte{"db/echo.dump": dump}, []string{"db/echo.dump"})
	b, _ := os.ReadFile(path)
	b[len(b)-len(dump)/2] ^= 1 // inside the stream's data (random bytes are stored nearly as is)
	os.WriteFile(path, b, 0o600)
	s, err := OpenStream(path, "db/echo.dump")
	if err != nil {
		return // refusing to open is as good
	}
	defer s.Close()
	if _, err := io.ReadAll(s); err == nil {
		t.Error("a damaged stream read without error")
	}
}
