package migrate

import (
	"bytes"
	"errors"
	"io"
	"os"
	"strings"
	"syscall"
	"testing"

	"github.com/echo-backup/echo-backup/compose"
)

var payload = bytes.Repeat([]byte("echo stream "), 100_000) // 1.2 MB: many pipe writes

func TestPipeWhole(t *testing.T) {
	var got bytes.Buffer
	saved, err := pipe(func(w io.Writer) error { _, err := w.Write(payload); return err },
		func(r io.Reader) error { _, err := io.Copy(&got, r); return err })
	if !saved || err != nil || !bytes.Equal(got.Bytes(), payload) {
		t.Fatalf("saved=%v err=%v, %d of %d bytes arrived", saved, err, got.Len(), len(payload))
	}
}

// The restore refuses early (a target that stops reading): the save must stop too, not block,
// and the restore's reason is the one told.
func TestPipeLoadStops(t *testing.T) {
	refused := errors.New("the stream's header names another project")
	saved, err := pipe(func(w io.Writer) error {
		for {
			if _, err := w.Write(payload); err != nil {
				return err
			}
		}
	}, func(r io.Reader) error {
		io.CopyN(io.Discard, r, 1000)
		return refused
	})
	if saved || !errors.Is(err, refused) {
		t.Fatalf("saved=%v err=%v, want the restore's own error", saved, err)
	}
}

// The save fails half way: the restore must see a broken stream, not a clean end.
func TestPipeSaveFails(t *testing.T) {
	dumpFailed := errors.New("pg_dump exited 1")
	var loadSaw error
	saved, err := pipe(func(w io.Writer) error {
		w.Write(payload[:1000])
		return dumpFailed
	}, func(r io.Reader) error {
		_, loadSaw = io.Copy(io.Discard, r)
		return loadSaw
	})
	if saved || !errors.Is(err, dumpFailed) || !strings.Contains(err.Error(), "rolled back") {
		t.Fatalf("saved=%v err=%v, want the save's error", saved, err)
	}
	if !errors.Is(loadSaw, dumpFailed) {
		t.Fatalf("the restore read %v, want the save's error instead of an end", loadSaw)
	}
}

// fullDisk is a copy on a disk with no room left: /dev/full answers every write with ENOSPC.
type fullDisk struct {
	*os.File
	discarded bool
}

func (f *fullDisk) Keep() (string, error) { return "", errors.New("kept a copy that failed") }
func (f *fullDisk) Discard()              { f.discarded = true }

// A copy here that runs out of room must not cost the migration: the stream goes on whole.
func TestCopyDroppedWhenDiskFills(t *testing.T) {
	dev, err := os.OpenFile("/dev/full", os.O_WRONLY, 0)
	if err != nil {
		t.Skip("no /dev/full here:", err)
	}
	defer dev.Close()
	full := &fullDisk{File: dev}
	c := &localCopy{file: full}
	var sent bytes.Buffer
	saved, err := pipe(func(w io.Writer) error { _, err := c.tee(w).Write(payload); return err },
		func(r io.Reader) error { _, err := io.Copy(&sent, r); return err })
	if !saved || err != nil || !bytes.Equal(sent.Bytes(), payload) {
		t.Fatalf("saved=%v err=%v, %d of %d bytes sent", saved, err, sent.Len(), len(payload))
	}
	if !errors.Is(c.err, syscall.ENOSPC) {
		t.Fatalf("the copy's error is %v, want ENOSPC", c.err)
	}
	var warned []string
	kept, err := c.finish(t.Context(), Options{Source: &compose.Deployment{Dir: "/backups"}, Warn: func(s string) { warned = append(warned, s) }})
	if kept != "" || err != nil || len(warned) != 1 || !strings.Contains(warned[0], "no copy") {
		t.Fatalf("finish: kept=%q err=%v warnings=%q", kept, err, warned)
	}
	c.discard()
	if !full.discarded {
		t.Fatal("the failed copy was not discarded")
	}
}

func TestNoCopy(t *testing.T) {
	c, err := Options{NoCopy: true}.openCopy()
	if err != nil || c.file != nil {
		t.Fatalf("NoCopy opened a copy: %+v, %v", c, err)
	}
	var w bytes.Buffer
	if c.tee(&w) != io.Writer(&w) {
		t.Fatal("NoCopy still tees the stream")
	}
}
