package plugin

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/docker/cli/cli/command"

	"github.com/echo-backup/echo-backup/backup"
	"github.com/echo-backup/echo-backup/compose"
)

// stdStream is the argument that means stdout for `save --output` and stdin for `restore`.
const stdStream = "-"

// The archive format needs a seekable file at both ends: the writer fills in the manifest at
// the start once everything else is written, and restore reads the dump by its index while it
// walks the files. So a stream is spooled through a hidden file in the backup folder (the
// same disk a backup would use anyway) and removed afterwards, on failure too.

// spoolDir is a hidden folder inside the backup folder for an archive on its way to stdout.
// list and latest never see it: they only look at complete archives.
func spoolDir(dockerCli command.Cli, dir string) (string, func(), error) {
	if dockerCli.Out().IsTerminal() {
		return "", nil, &compose.UserError{Err: fmt.Errorf("refusing to write an archive to a terminal: " +
			"pipe `save --output -` into a command or a file")}
	}
	if err := backup.PrepareDir(dir); err != nil {
		return "", nil, err
	}
	tidySpools(dockerCli, dir)
	tmp, err := os.MkdirTemp(dir, spoolOut+"*.partial")
	if err != nil {
		return "", nil, fmt.Errorf("creating a spool folder in %s: %w", dir, err)
	}
	return tmp, func() { os.RemoveAll(tmp) }, nil
}

// sendArchive copies a finished archive to stdout and reports on stderr, stdout being taken.
func sendArchive(dockerCli command.Cli, res *backup.Result, opts saveOptions) error {
	f, err := os.Open(res.Path)
	if err != nil {
		return err
	}
	defer f.Close()
	// A reader that goes away (`| head`, a dropped ssh) must end in an error, not in SIGPIPE's
	// silent exit, so that the spool folder is removed.
	signal.Ignore(syscall.SIGPIPE)
	if _, err := io.Copy(dockerCli.Out(), f); err != nil {
		return fmt.Errorf("writing the archive to stdout: %w", err)
	}
	res.Path = stdStream
	if opts.quiet {
		return nil
	}
	return printSaved(dockerCli.Err(), res, opts)
}

// spoolStdin copies an archive from stdin into a hidden file in the backup folder. Stdin then
// holds no answer to a question, so the caller must have been told not to ask.
func spoolStdin(ctx context.Context, dockerCli command.Cli, dir string, noPrompt bool) (string, func(), error) {
	if !noPrompt {
		return "", nil, &compose.UserError{Err: fmt.Errorf("`restore -` reads the archive from stdin, " +
			"so it cannot ask for confirmation: pass --yes (or --dry-run)")}
	}
	if dockerCli.In().IsTerminal() {
		return "", nil, &compose.UserError{Err: fmt.Errorf("`restore -` reads an archive from stdin, which is a terminal: " +
			"pipe one in, e.g. `docker echobackup save --output - | ssh HOST docker echobackup restore - --yes`")}
	}
	if err := backup.PrepareDir(dir); err != nil {
		return "", nil, err
	}
	tidySpools(dockerCli, dir)
	f, err := os.CreateTemp(dir, spoolIn+"*"+backup.Ext+".partial")
	if err != nil {
		return "", nil, fmt.Errorf("creating a spool file in %s: %w", dir, err)
	}
	done := func() { os.Remove(f.Name()) }
	_, err = io.Copy(f, readerCtx{ctx, dockerCli.In()})
	if closeErr := f.Close(); err == nil {
		err = closeErr
	}
	if err != nil {
		done()
		return "", nil, fmt.Errorf("reading the archive from stdin: %w", err)
	}
	return f.Name(), done, nil
}

// readerCtx stops a copy from stdin at the next read once Ctrl-C has cancelled ctx.
type readerCtx struct {
	ctx context.Context
	r   io.Reader
}

func (r readerCtx) Read(p []byte) (int, error) {
	if err := r.ctx.Err(); err != nil {
		return 0, err
	}
	return r.r.Read(p)
}

// The spools' name prefixes; both end in ".partial", so list and latest never see them.
const (
	spoolOut = ".stdout-"
	spoolIn  = ".stdin-"
)

// staleSpool is the age at which a spool is a leftover of a killed save or restore. A spool in
// use is younger (its file is being written), or open, and an open file removed stays readable.
const staleSpool = 24 * time.Hour

// tidySpools removes stale spools before a stream adds its own, if the folder's lock is free:
// housekeeping never waits for another command.
func tidySpools(dockerCli command.Cli, dir string) {
	unlock, err := backup.TryLock(dir)
	if err != nil {
		return
	}
	defer unlock()
	removeStaleSpools(dockerCli.Err(), dir, time.Now())
}

// removeStaleSpools removes the spool files and folders in dir that nothing touched for a day
// and says so on stderr. The caller holds dir's lock. A failure is told, never fatal: the
// command at hand does not depend on it.
func removeStaleSpools(stderr io.Writer, dir string, now time.Time) {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return
	}
	for _, e := range ents {
		name := e.Name()
		if !strings.HasSuffix(name, ".partial") || !strings.HasPrefix(name, spoolOut) && !strings.HasPrefix(name, spoolIn) {
			continue
		}
		path := filepath.Join(dir, name)
		last, err := lastWrite(path)
		if err != nil || now.Sub(last) < staleSpool {
			continue
		}
		if err := os.RemoveAll(path); err != nil {
			fmt.Fprintf(stderr, "WARNING: removing %s, left by a stream that did not finish: %v\n", path, err)
			continue
		}
		fmt.Fprintf(stderr, "Removed %s, left %s ago by a save --output - or restore - that did not finish\n",
			path, now.Sub(last).Round(time.Hour))
	}
}

// lastWrite is when path, or anything directly inside it, was last written: a spool folder's
// own time stops changing once its archive file is created.
func lastWrite(path string) (time.Time, error) {
	st, err := os.Stat(path)
	if err != nil {
		return time.Time{}, err
	}
	last := st.ModTime()
	if !st.IsDir() {
		return last, nil
	}
	ents, err := os.ReadDir(path)
	if err != nil {
		return time.Time{}, err
	}
	for _, e := range ents {
		if info, err := e.Info(); err == nil && info.ModTime().After(last) {
			last = info.ModTime()
		}
	}
	return last, nil
}
