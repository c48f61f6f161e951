package postgres

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"syscall"

	"github.com/moby/moby/api/types/mount"

	"github.com/echo-backup/echo-backup/engine"
	"github.com/echo-backup/echo-backup/leftover"
)

// Near is set when the engine shares this machine's disk. pg_dump and pg_restore then run in a
// helper container from the database's image, joined to the database container's network, and
// the data crosses through a FIFO or a file in a folder of ours: the engine's exec stream, which
// carries a dump at about 30 MB/s, is left out of the data path.
type Near struct {
	Dir     string // a folder on this machine (the backup folder) for the transfer folder
	Image   string // the database service's image: same major as the server
	Project string
}

// xferMount is where the transfer folder appears inside the helper.
const xferMount = "/xfer"

// tool runs a PostgreSQL client program next to the server, reaching it over 127.0.0.1.
func (t Target) tool(ctx context.Context, xferDir string, cmd ...string) error {
	return engine.RunHelper(ctx, t.API, engine.HelperOptions{
		Project: t.Near.Project, Image: t.Near.Image, NetworkOf: t.Container, Purpose: "pg",
		Env: t.env(), Cmd: append(cmd, "-h", "127.0.0.1"),
		Mounts: []mount.Mount{{Type: mount.TypeBind, Source: xferDir, Target: xferMount}},
	})
}

// XferFolder makes a private transfer folder beside the backups, held (leftover) so that
// the next command removes it if we are killed; the caller removes it, then releases it.
func (n *Near) XferFolder() (dir string, release func(), err error) {
	dir, release, err = leftover.MkdirTemp(n.Dir, ".echobackup-xfer-")
	if err != nil {
		return "", nil, fmt.Errorf("creating a transfer folder: %w", err)
	}
	return dir, release, nil
}

// XferDir is XferFolder for callers that only remove the folder: it stays held until this
// process ends, which costs one descriptor per folder.
func (n *Near) XferDir() (string, error) {
	dir, _, err := n.XferFolder()
	return dir, err
}

// dumpNear runs pg_dump into a FIFO that we read: nothing of the dump touches the disk.
func (t Target) dumpNear(ctx context.Context, args []string, w io.Writer) error {
	dir, release, err := t.Near.XferFolder()
	if err != nil {
		return err
	}
	defer release()
	defer os.RemoveAll(dir)
	fifo := filepath.Join(dir, "dump")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		return fmt.Errorf("creating a FIFO for pg_dump: %w", err)
	}
	opened := make(chan *os.File, 1)
	go func() {
		f, err := os.OpenFile(fifo, os.O_RDONLY, 0)
		if err != nil {
			f = nil
		}
		opened <- f
	}()
	done := make(chan error, 1)
	go func() { done <- t.tool(ctx, dir, append(args, "-f", xferMount+"/dump")...) }()
	select {
	case f := <-opened:
		return t.copyFIFO(f, w, done)
	case err := <-done:
		unblockOpen(fifo, opened)
		if err == nil {
			err = errors.New("pg_dump ended without writing")
		}
		return err
	}
}

// copyFIFO reads the dump to its end; closing our end early makes pg_dump fail, not hang.
func (t Target) copyFIFO(f *os.File, w io.Writer, done <-chan error) error {
	if f == nil {
		return errors.Join(errors.New("opening the dump FIFO failed"), <-done)
	}
	_, copyErr := io.Copy(w, f)
	f.Close()
	return errors.Join(copyErr, <-done)
}

// unblockOpen releases the goroutine still waiting to open the FIFO for reading.
func unblockOpen(fifo string, opened <-chan *os.File) {
	if wf, err := os.OpenFile(fifo, os.O_WRONLY|syscall.O_NONBLOCK, 0); err == nil {
		wf.Close()
	}
	if f := <-opened; f != nil {
		f.Close()
	}
}
