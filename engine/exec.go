package engine

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"strings"

	"github.com/moby/moby/api/pkg/stdcopy"
	"github.com/moby/moby/client"
)

// ExecOptions describe one command run inside a container, the way `docker exec -i` without a
// TTY runs it: a TTY would merge stdout into stderr and mangle binary output such as a dump.
type ExecOptions struct {
	Cmd    []string
	Env    []string // secrets go here, never into Cmd, where `ps` and logs would show them
	User   string
	Stdin  io.Reader
	Stdout io.Writer
}

// ExitError is a command that ran and failed; Stderr holds the end of what it printed.
type ExitError struct {
	Cmd    string
	Code   int
	Stderr string
}

func (e *ExitError) Error() string {
	msg := fmt.Sprintf("%s exited %d", e.Cmd, e.Code)
	if e.Stderr != "" {
		msg += ": " + e.Stderr
	}
	return msg
}

const stderrKeep = 4096

// Exec runs a command in a running container, streams its stdout, keeps the end of its stderr
// for the error, and fails unless it exits 0.
func Exec(ctx context.Context, api Engine, containerID string, o ExecOptions) error {
	created, err := api.ExecCreate(ctx, containerID, client.ExecCreateOptions{
		Cmd: o.Cmd, Env: o.Env, User: o.User,
		AttachStdin: o.Stdin != nil, AttachStdout: true, AttachStderr: true,
	})
	if err != nil {
		return fmt.Errorf("starting %s: %w", o.Cmd[0], err)
	}
	att, err := api.ExecAttach(ctx, created.ID, client.ExecAttachOptions{})
	if err != nil {
		return fmt.Errorf("attaching to %s: %w", o.Cmd[0], err)
	}
	defer att.Close()
	// Closing the connection is the only way to stop a hijacked stream when the user cancels.
	stop := context.AfterFunc(ctx, func() { att.Close() })
	defer stop()

	if o.Stdin != nil {
		// Not waited for: the caller owns Stdin and closes it (see postgres.feed) once the
		// command has exited.
		go func() {
			_, _ = io.Copy(att.Conn, o.Stdin)
			_ = att.CloseWrite()
		}()
	}
	stderr := &tailBuffer{max: stderrKeep}
	stdout := o.Stdout
	if stdout == nil {
		stdout = io.Discard
	}
	_, copyErr := stdcopy.StdCopy(stdout, stderr, att.Reader)
	if ctx.Err() != nil {
		return ctx.Err()
	}
	if copyErr != nil {
		return fmt.Errorf("reading the output of %s: %w", o.Cmd[0], copyErr)
	}
	return exitStatus(ctx, api, created.ID, o.Cmd[0], stderr.String())
}

func exitStatus(ctx context.Context, api Engine, execID, name, stderr string) error {
	res, err := api.ExecInspect(ctx, execID, client.ExecInspectOptions{})
	if err != nil {
		return fmt.Errorf("reading the exit code of %s: %w", name, err)
	}
	if res.ExitCode != 0 {
		return &ExitError{Cmd: name, Code: res.ExitCode, Stderr: strings.TrimSpace(stderr)}
	}
	return nil
}

// Output runs a short command and returns its stdout.
func Output(ctx context.Context, api Engine, containerID string, o ExecOptions) (string, error) {
	var out bytes.Buffer
	o.Stdout = &out
	err := Exec(ctx, api, containerID, o)
	return out.String(), err
}

// tailBuffer keeps the last max bytes written: a failing pg_dump's last lines say why.
type tailBuffer struct {
	max int
	buf []byte
}

func (t *tailBuffer) Write(p []byte) (int, error) {
	t.buf = append(t.buf, p...)
	if len(t.buf) > t.max {
		t.buf = append(t.buf[:0], t.buf[len(t.buf)-t.max:]...)
	}
	return len(p), nil
}

func (t *tailBuffer) String() string { return string(t.buf) }
