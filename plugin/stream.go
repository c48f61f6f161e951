package plugin

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/docker/cli/cli/command"

	"github.com/echo-backup/echo-backup/backup"
	"github.com/echo-backup/echo-backup/compose"
	"github.com/echo-backup/echo-backup/leftover"
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
	tidySpools(dir)
	tmp, release, err := leftover.MkdirTemp(dir, spoolOut+"*.partial")
	if err != nil {
		return "", nil, fmt.Errorf("creating a spool folder in %s: %w", dir, err)
	}
	return tmp, func() { os.RemoveAll(tmp); release() }, nil
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
	tidySpools(dir)
	f, err := leftover.CreateTemp(dir, spoolIn+"*"+backup.Ext+".partial")
	if err != nil {
		return "", nil, fmt.Errorf("creating a spool file in %s: %w", dir, err)
	}
	// Held to the end, as f's own hold ends when f is closed.
	release, err := leftover.Hold(f.Name())
	if err != nil {
		f.Close()
		os.Remove(f.Name())
		return "", nil, fmt.Errorf("creating a spool file in %s: %w", dir, err)
	}
	done := func() { os.Remove(f.Name()); release() }
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

// tidySpools lets the folder's lock sweep what killed commands left (spools among them)
// before a stream adds its own, if the lock is free: housekeeping never waits for another
// command. A spool in use is held by its owner, so no sweep removes it (package leftover).
func tidySpools(dir string) {
	if unlock, err := backup.TryLock(dir); err == nil {
		unlock()
	}
}
