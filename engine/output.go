package engine

import (
	"bytes"
	"io"
	"sync"
	"time"

	"github.com/moby/moby/api/pkg/stdcopy"
)

// helperOutput keeps what a started helper's command writes, read from its attach stream:
// an auto-removed helper has no logs left to ask for once it exits.
type helperOutput struct {
	mu     sync.Mutex
	stdout capped
	stderr capped
	done   chan struct{}
}

// Bounds on what is kept: stdout carries small script answers, stderr's end says why a tool failed.
const (
	maxStdout = 1 << 20
	maxStderr = 64 << 10
)

func newHelperOutput() *helperOutput {
	return &helperOutput{stdout: capped{max: maxStdout}, stderr: capped{max: maxStderr}, done: make(chan struct{})}
}

func (o *helperOutput) copy(r io.Reader) {
	defer close(o.done)
	_, _ = stdcopy.StdCopy(lockedWriter{&o.mu, &o.stdout}, lockedWriter{&o.mu, &o.stderr}, r)
}

// wait gives the stream a moment to end after the container exited, then returns what came.
func (o *helperOutput) wait(d time.Duration) (stdout, stderr string) {
	select {
	case <-o.done:
	case <-time.After(d):
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.stdout.String(), o.stderr.String()
}

type lockedWriter struct {
	mu *sync.Mutex
	w  io.Writer
}

func (l lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

// capped keeps the last max bytes written to it.
type capped struct {
	bytes.Buffer
	max int
}

func (c *capped) Write(p []byte) (int, error) {
	n := len(p)
	if len(p) > c.max {
		p = p[len(p)-c.max:]
	}
	if over := c.Len() + len(p) - c.max; over > 0 {
		c.Next(over)
	}
	c.Buffer.Write(p)
	return n, nil
}
