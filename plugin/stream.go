package plugin

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os/signal"
	"sync/atomic"
	"syscall"

	"github.com/docker/cli/cli/command"
	"github.com/docker/go-units"

	"github.com/echo-backup/echo-backup/compose"
)

// stdStream is the argument that means stdout for `save --output -` and stdin for `restore`.
const stdStream = "-"

// `save --output -` writes the archive's stream form straight to stdout and `restore -` reads
// it once from stdin: nothing of it touches the disk on either side (package archive).

// streamOut is stdout for `save --output -`, refused when it is a terminal.
func streamOut(dockerCli command.Cli) (*pipeOut, error) {
	if dockerCli.Out().IsTerminal() {
		return nil, &compose.UserError{Err: fmt.Errorf("refusing to write an archive to a terminal: " +
			"pipe `save --output -` into a command or a file")}
	}
	// A reader that goes away (`| head`, a dropped ssh) must end in an error that says so, not
	// in SIGPIPE's silent exit, so that the helpers are removed.
	signal.Ignore(syscall.SIGPIPE)
	return &pipeOut{w: dockerCli.Out()}, nil
}

// pipeOut counts what reached stdout and notes a reader that went away.
type pipeOut struct {
	w    io.Writer
	n    atomic.Int64
	gone atomic.Bool
}

func (p *pipeOut) Write(b []byte) (int, error) {
	n, err := p.w.Write(b)
	p.n.Add(int64(n))
	if errors.Is(err, syscall.EPIPE) {
		p.gone.Store(true)
	}
	return n, err
}

// explain turns a failure after the reader went away into one line that says so.
func (p *pipeOut) explain(err error) error {
	if p == nil || err == nil || !p.gone.Load() {
		return err
	}
	return fmt.Errorf("writing the archive to stdout: the reader went away after %s (broken pipe): "+
		"what it got is incomplete, and `restore -` refuses it", units.BytesSize(float64(p.n.Load())))
}

// streamIn is stdin for `restore -`. Stdin then holds no answer to a question, so the caller
// must have been told not to ask.
func streamIn(ctx context.Context, dockerCli command.Cli, noPrompt bool) (io.Reader, error) {
	if !noPrompt {
		return nil, &compose.UserError{Err: fmt.Errorf("`restore -` reads the archive from stdin, " +
			"so it cannot ask for confirmation: pass --yes (or --dry-run)")}
	}
	if dockerCli.In().IsTerminal() {
		return nil, &compose.UserError{Err: fmt.Errorf("`restore -` reads an archive from stdin, which is a terminal: " +
			"pipe one in, e.g. `docker echobackup save --output - | ssh HOST docker echobackup restore - --yes`")}
	}
	in := bufio.NewReaderSize(readerCtx{ctx, dockerCli.In()}, 1<<20)
	// Wait for the first byte before the backup folder's lock is taken: a `save --output -` on
	// this machine at the other end of the pipe takes that lock too, and lets it go before it
	// writes anything.
	if _, err := in.Peek(1); err != nil {
		return nil, fmt.Errorf("reading the archive from stdin: %w", err)
	}
	return in, nil
}

// readerCtx stops a read from stdin at the next read once Ctrl-C has cancelled ctx.
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
