package progress

import (
	"fmt"
	"io"
	"strings"
	"sync/atomic"
	"time"

	"github.com/docker/compose/v5/pkg/api"
	"github.com/docker/go-units"
)

// Task is one part of a command (the database, a data folder, the swap): a row in a terminal
// with its bytes, rate, percentage and time left when its size is known, a spinner when not.
// A nil *Task does nothing.
type Task struct {
	r        *Reporter
	id       string
	parent   *Task
	children []*Task
	text     string
	status   api.EventStatus
	details  string // set when it ends
	finished bool
	started  time.Time
	total    atomic.Int64
	done     atomic.Int64
	sent     int64 // done when last emitted
}

// Task starts a part with id (what it is: `database "echo"`), text (what happens to it:
// "Saving") and total bytes, 0 when unknown.
func (r *Reporter) Task(id, text string, total int64) *Task {
	if r == nil || r.mode == Quiet {
		return nil
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	t := &Task{r: r, id: id, text: text, status: api.Working, started: r.now(), parent: r.group}
	if t.parent != nil {
		t.id = t.parent.id + ": " + id // unique in the block, and says whose part it is
		t.parent.children = append(t.parent.children, t)
	}
	t.total.Store(total)
	r.tasks = append(r.tasks, t)
	r.emit(t)
	return t
}

// Under is a Reporter whose tasks are parts of t (the safety backup's database and folders): in
// a terminal they add up on t's row.
func (r *Reporter) Under(t *Task) *Reporter {
	if r == nil || t == nil {
		return r
	}
	return &Reporter{shared: r.shared, group: t}
}

// Add counts n more bytes done; cheap enough for every Read (redrawn by the Reporter's clock).
func (t *Task) Add(n int64) {
	if t != nil {
		t.done.Add(n)
	}
}

// SetTotal gives the size once it is known.
func (t *Task) SetTotal(n int64) {
	if t != nil {
		t.total.Store(n)
	}
}

// Reader counts what is read through it as done.
func (t *Task) Reader(r io.Reader) io.Reader {
	if t == nil {
		return r
	}
	return &countingReader{r: r, t: t}
}

type countingReader struct {
	r io.Reader
	t *Task
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.t.Add(int64(n))
	return n, err
}

// Step says the part has moved on ("Loading" after "Staging"); the clock keeps running.
func (t *Task) Step(text string) {
	if t == nil {
		return
	}
	t.r.mu.Lock()
	defer t.r.mu.Unlock()
	t.text = text
	t.emit()
}

// Done ends the part with text ("Saved").
func (t *Task) Done(text string) {
	t.end(api.Done, text, "")
}

// End ends the part as Done when err is nil, else as failed with the error's text.
func (t *Task) End(text string, err error) {
	if t == nil {
		return
	}
	if err != nil {
		msg := err.Error()
		if t.r.explain != nil {
			msg = t.r.explain(msg)
		}
		t.end(api.Error, "Error", msg)
		return
	}
	t.Done(text)
}

func (t *Task) end(status api.EventStatus, text, details string) {
	if t == nil {
		return
	}
	t.r.mu.Lock()
	defer t.r.mu.Unlock()
	if t.finished {
		return
	}
	t.finished, t.status, t.text, t.details = true, status, text, details
	t.emit()
	if p := t.parent; p != nil {
		p.emit() // its sums changed
	}
}

func (t *Task) emit() { t.r.emit(t) }

// emit sends t's state to the event processor; called with the lock held.
func (r *shared) emit(t *Task) {
	done, total := t.sums()
	t.sent = t.done.Load()
	res := api.Resource{ID: t.id, Text: t.text, Status: t.status, Details: t.details}
	if t.details == "" {
		res.Details = t.describe(done, total, r.now(), r.mode != TTY)
	}
	if t.parent != nil {
		res.ParentID = t.parent.id
	}
	bytes := api.Resource{Current: done, Total: total, Percent: percent(done, total)}
	if t.finished && t.status == api.Done && total > 0 {
		bytes.Current, bytes.Percent = max(done, total), 100
	}
	switch {
	case r.mode != TTY:
		res.Current, res.Total, res.Percent = bytes.Current, bytes.Total, bytes.Percent
		r.ep.On(res)
	case t.parent != nil || len(t.children) > 0:
		// compose draws a row per top-level task and the bar of its parts: a part is a child
		// with its own bytes, a group row only its sums in the details.
		res.Current, res.Total, res.Percent = bytes.Current, bytes.Total, bytes.Percent
		r.ep.On(res)
	case done > 0 || total > 0:
		// compose draws sizes and a bar only from a row's children, so a part that counts
		// bytes carries them on a child of its own, which is not drawn as a row.
		r.ep.On(res)
		bytes.ID, bytes.ParentID, bytes.Status, bytes.Text = t.id+" (bytes)", t.id, t.status, t.text
		r.ep.On(bytes)
	default:
		r.ep.On(res)
	}
}

// sums are t's bytes, or its parts' when it has some; total is 0 while a part's size is unknown.
func (t *Task) sums() (done, total int64) {
	if len(t.children) == 0 {
		return t.done.Load(), t.total.Load()
	}
	known := true
	for _, c := range t.children {
		d, n := c.sums()
		done += d
		total += n
		known = known && (n > 0 || c.finished)
	}
	if !known {
		total = 0
	}
	return done, total
}

// describe is the details of a row: percentage, rate and time left while it runs, what it did
// and how fast when it is over. withSizes adds the byte counts, which a terminal shows beside its bar.
func (t *Task) describe(done, total int64, now time.Time, withSizes bool) string {
	elapsed := now.Sub(t.started)
	switch {
	case done == 0 && t.finished:
		return "in " + roundDuration(elapsed).String()
	case done == 0 && withSizes && total > 0:
		return "0B / " + size(total)
	case done == 0:
		return ""
	}
	rate := float64(done) / max(elapsed.Seconds(), 0.001)
	var parts []string
	switch {
	case t.finished:
		parts = append(parts, fmt.Sprintf("%s in %s", size(done), roundDuration(elapsed)))
	case withSizes && total > 0:
		parts = append(parts, size(done)+" / "+size(total))
	case withSizes || total == 0:
		parts = append(parts, size(done))
	}
	if !t.finished && total > 0 {
		parts = append(parts, fmt.Sprintf("%d%%", percent(done, total)))
	}
	parts = append(parts, size(int64(rate))+"/s")
	if !t.finished && total > done && rate > 0 {
		left := time.Duration(float64(total-done) / rate * float64(time.Second))
		parts = append(parts, max(left.Round(time.Second), time.Second).String()+" left")
	}
	return strings.Join(parts, " ")
}

func percent(done, total int64) int {
	if total <= 0 {
		return 0
	}
	return int(min(100*done/total, 100))
}

func size(n int64) string { return units.HumanSizeWithPrecision(float64(n), 3) }

// Writer counts what is written through it as done.
func (t *Task) Writer(w io.Writer) io.Writer {
	if t == nil {
		return w
	}
	return &countingWriter{w: w, t: t}
}

type countingWriter struct {
	w io.Writer
	t *Task
}

func (c *countingWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.t.Add(int64(n))
	return n, err
}

// roundDuration keeps two or three figures: 31ms, 2.9s, 1m12s.
func roundDuration(d time.Duration) time.Duration {
	switch {
	case d < time.Second:
		return d.Round(time.Millisecond)
	case d < time.Minute:
		return d.Round(100 * time.Millisecond)
	}
	return d.Round(time.Second)
}
