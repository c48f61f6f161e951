package progress

import (
	"context"
	"fmt"
	"io"
	"strings"
	"sync"
	"time"

	"github.com/docker/compose/v5/cmd/display"
	"github.com/docker/compose/v5/pkg/api"
)

// Reporter draws one command's progress. A nil *Reporter draws nothing, so the domain packages
// report without asking whether anyone is looking.
type Reporter struct {
	*shared
	group *Task // tasks made through this Reporter are parts of group (see Under)
}

// shared is what every Reporter made by Under from one New has in common.
type shared struct {
	mode  Mode
	ep    api.EventProcessor
	out   io.Writer // warnings after a terminal block
	lines io.Writer // plain: the timed writer, for Log
	now   func() time.Time
	every time.Duration // how often byte counts are redrawn or reported
	// explain rewrites a failed part's error text (migrate: an ssh helper's wall, in ssh's words).
	explain func(string) string

	mu       sync.Mutex
	op       string
	tasks    []*Task
	warnings []string
	nWarn    int
	opRow    bool // Log drew the command's own row
	depth    int  // Starts not yet Done: a step that starts inside a command draws into its block
	stop     context.CancelFunc
	stopped  chan struct{}
}

// New draws on out (stderr) in mode, which must be resolved (see Resolve): Auto counts as Plain.
func New(out io.Writer, mode Mode) *Reporter {
	s := &shared{mode: mode, out: out, now: time.Now}
	switch mode {
	case TTY:
		s.ep, s.every = display.Full(out, out, true), 200*time.Millisecond
	case JSON:
		s.ep, s.every = display.JSON(out), time.Second
	case Quiet:
		s.ep = quiet{}
	default:
		s.mode = Plain
		s.lines = &timedLines{out: out, start: time.Now(), now: time.Now}
		s.ep, s.every = display.Plain(s.lines), 5*time.Second
	}
	return &Reporter{shared: s}
}

// ExplainErrors makes f rewrite the text of every part that ends with an error; set it before
// the first Task.
func (r *Reporter) ExplainErrors(f func(string) string) {
	if r != nil {
		r.explain = f
	}
}

// Mode is how this Reporter draws; Quiet for nil.
func (r *Reporter) Mode() Mode {
	if r == nil {
		return Quiet
	}
	return r.mode
}

// Start begins the command's block (the "[+] save 2/4" header in a terminal) and the clock that
// redraws byte counts.
func (r *Reporter) Start(ctx context.Context, operation string) {
	if r == nil || r.mode == Quiet {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.depth++; r.depth > 1 {
		return
	}
	r.op = operation
	r.ep.Start(ctx, operation)
	tick, cancel := context.WithCancel(ctx)
	r.stop, r.stopped = cancel, make(chan struct{})
	go r.tick(tick, r.stopped)
}

func (r *Reporter) tick(ctx context.Context, stopped chan<- struct{}) {
	defer close(stopped)
	t := time.NewTicker(r.every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			r.mu.Lock()
			for _, task := range r.tasks {
				if !task.finished && task.done.Load() != task.sent {
					r.emit(task)
				}
			}
			r.mu.Unlock()
		}
	}
}

// Done ends the block; in a terminal the warnings held back while it was drawn follow it.
func (r *Reporter) Done(success bool) {
	if r == nil || r.mode == Quiet {
		return
	}
	r.mu.Lock()
	if r.depth--; r.depth > 0 || r.stop == nil {
		r.mu.Unlock()
		return
	}
	r.stop()
	stopped := r.stopped
	r.stop = nil
	r.mu.Unlock()
	<-stopped
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.opRow {
		// the row of the command itself, which Log lines update
		status, text := api.Done, "Done"
		if !success {
			status, text = api.Error, "Failed"
		}
		r.ep.On(api.Resource{ID: r.op, Status: status, Text: text})
	}
	r.ep.Done(r.op, success)
	r.op, r.opRow = "", false
	for _, w := range r.warnings {
		fmt.Fprintln(r.out, "WARNING: "+w)
	}
	r.warnings = nil
}

// Log says what the command is doing now: a timed line in a log, the command's own row in a
// terminal, an event with the command as id in JSON. A message that starts with "WARNING: "
// is a warning (see Warn).
func (r *Reporter) Log(msg string) {
	if r == nil || r.mode == Quiet {
		return
	}
	if w, ok := strings.CutPrefix(msg, "WARNING: "); ok {
		r.Warn(w)
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	switch {
	case r.mode == Plain:
		fmt.Fprintln(r.lines, msg)
	case r.op != "":
		r.opRow = true
		r.ep.On(api.Resource{ID: r.op, Status: api.Working, Text: "Working", Details: msg})
	case r.mode == JSON:
		r.ep.On(api.Resource{ID: "echobackup", Status: api.Working, Text: "Working", Details: msg})
	default:
		fmt.Fprintln(r.out, msg)
	}
}

// Warn reports something the user should know that does not stop the command. A terminal
// shows a row at once and the whole text after the block, where it cannot be cut or redrawn.
func (r *Reporter) Warn(msg string) {
	if r == nil {
		return
	}
	msg = strings.TrimPrefix(msg, "WARNING: ")
	r.mu.Lock()
	defer r.mu.Unlock()
	switch {
	case r.mode == Plain:
		fmt.Fprintln(r.lines, "WARNING: "+msg)
	case r.mode == JSON:
		r.ep.On(api.Resource{ID: "warning", Status: api.Warning, Text: "Warning", Details: msg})
	case r.mode == TTY && r.op != "":
		r.nWarn++
		r.ep.On(api.Resource{ID: fmt.Sprintf("warning %d", r.nWarn), Status: api.Warning, Text: "Warning", Details: msg})
		r.warnings = append(r.warnings, msg)
	default: // quiet still warns, as the commands always have
		fmt.Fprintln(r.out, "WARNING: "+msg)
	}
}

// Events is the Reporter as compose's event processor, for compose operations (down) that run
// inside a command: their rows join this block, which stays the Reporter's to start and end.
func (r *Reporter) Events() api.EventProcessor {
	if r == nil {
		return quiet{}
	}
	return events{r}
}

type events struct{ r *Reporter }

func (events) Start(context.Context, string) {}
func (events) Done(string, bool)             {}
func (e events) On(res ...api.Resource) {
	e.r.mu.Lock()
	defer e.r.mu.Unlock()
	e.r.ep.On(res...)
}

type quiet struct{}

func (quiet) Start(context.Context, string) {}
func (quiet) On(...api.Resource)            {}
func (quiet) Done(string, bool)             {}
