package progress

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/docker/compose/v5/pkg/api"
)

func TestParseMode(t *testing.T) {
	for in, want := range map[string]Mode{"": Auto, "TTY": TTY, " plain ": Plain, "json": JSON, "none": Quiet, "quiet": Quiet} {
		if got, err := ParseMode(in); err != nil || got != want {
			t.Errorf("ParseMode(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	if _, err := ParseMode("rawjson"); err == nil {
		t.Error(`ParseMode("rawjson") accepted a mode we cannot draw`)
	}
}

func TestFromEnv(t *testing.T) {
	cases := []struct {
		env  map[string]string
		want Mode
		ok   bool
	}{
		{map[string]string{}, Auto, false},
		{map[string]string{"BUILDKIT_PROGRESS": "plain"}, Plain, true},
		{map[string]string{"BUILDKIT_PROGRESS": "plain", "COMPOSE_PROGRESS": "json"}, JSON, true},
		{map[string]string{"BUILDKIT_PROGRESS": "rawjson"}, Auto, false}, // buildx's own: ignored
		{map[string]string{"ECHOBACKUP_PROGRESS": "tty", "COMPOSE_PROGRESS": "json"}, TTY, true},
		{map[string]string{"ECHOBACKUP_PROGRESS": "fancy"}, Auto, false},
	}
	for _, c := range cases {
		got, ok := FromEnv(func(k string) string { return c.env[k] })
		if got != c.want || ok != c.ok {
			t.Errorf("FromEnv(%v) = %q, %v; want %q, %v", c.env, got, ok, c.want, c.ok)
		}
	}
	if Resolve(Auto, true) != TTY || Resolve(Auto, false) != Plain || Resolve(JSON, true) != JSON {
		t.Error("Resolve: auto must follow the terminal, and an explicit mode win")
	}
}

func TestTimedLines(t *testing.T) {
	var out bytes.Buffer
	start := time.Unix(100, 0)
	clock := start.Add(1500 * time.Millisecond)
	w := &timedLines{out: &out, start: start, now: func() time.Time { return clock }}
	w.Write([]byte(" database echo Sav"))
	w.Write([]byte("ing \nsecond\n"))
	if want := "[  1.5s] database echo Saving\n[  1.5s] second\n"; out.String() != want {
		t.Errorf("timed lines:\n%q\nwant\n%q", out.String(), want)
	}
}

// recorder keeps what compose's renderers would receive.
type recorder struct{ got []api.Resource }

func (r *recorder) Start(context.Context, string) {}
func (r *recorder) On(e ...api.Resource)          { r.got = append(r.got, e...) }
func (r *recorder) Done(string, bool)             {}

func fakeReporter(mode Mode, clock *time.Time) (*Reporter, *recorder) {
	rec := &recorder{}
	return &Reporter{shared: &shared{mode: mode, ep: rec, now: func() time.Time { return *clock }, every: time.Hour}}, rec
}

func TestTaskDetails(t *testing.T) {
	clock := time.Unix(0, 0)
	r, rec := fakeReporter(Plain, &clock)
	task := r.Task(`database "echo"`, "Saving", 100<<20)
	clock = clock.Add(2 * time.Second)
	task.Add(25 << 20)
	task.emit()
	last := rec.got[len(rec.got)-1]
	if last.Current != 25<<20 || last.Total != 100<<20 || last.Percent != 25 {
		t.Errorf("bytes: %+v", last)
	}
	// 25 MiB in 2 s: 12.5 MiB/s, 75 MiB left is 6 s
	if want := "26.2MB / 105MB 25% 13.1MB/s 6s left"; last.Details != want {
		t.Errorf("details %q, want %q", last.Details, want)
	}
	task.End("Saved", nil)
	if last = rec.got[len(rec.got)-1]; last.Status != api.Done || last.Percent != 100 || !strings.Contains(last.Details, "in 2s") {
		t.Errorf("finished: %+v", last)
	}
	spin := r.Task("swap", "Swapping", 0)
	spin.End("", errors.New("no room"))
	if last = rec.got[len(rec.got)-1]; last.Status != api.Error || last.Details != "no room" {
		t.Errorf("failed: %+v", last)
	}
}

// In a terminal a part with bytes carries them on a child, which compose draws as the bar and
// sizes of the part's row; a group's parts are children of the group's row.
func TestTTYChildren(t *testing.T) {
	clock := time.Unix(0, 0)
	r, rec := fakeReporter(TTY, &clock)
	r.Task("folder ./data", "Saving", 10)
	if len(rec.got) != 2 || rec.got[1].ParentID != "folder ./data" || rec.got[1].Total != 10 || rec.got[0].Total != 0 {
		t.Fatalf("a part with a size: %+v", rec.got)
	}
	g := r.Task("safety backup", "Saving", 0)
	sub := r.Under(g).Task(`database "echo"`, "Saving", 50)
	if got := rec.got[len(rec.got)-1]; got.ID != `safety backup: database "echo"` || got.ParentID != "safety backup" || got.Total != 50 {
		t.Fatalf("a part of a group: %+v", got)
	}
	sub.Add(50)
	sub.Done("Saved")
	if d, n := g.sums(); d != 50 || n != 50 {
		t.Errorf("group sums %d/%d, want 50/50", d, n)
	}
}

// The JSON mode goes through compose's own writer: one object per line.
func TestJSONLines(t *testing.T) {
	var out bytes.Buffer
	r := New(&out, JSON)
	r.Start(context.Background(), "save")
	task := r.Task("folder ./data", "Saving", 4)
	task.Add(4)
	task.Done("Saved")
	r.Warn("WARNING: left out a socket")
	r.Log("all done")
	r.Done(true)
	var phases []string
	for _, line := range strings.Split(strings.TrimSpace(out.String()), "\n") {
		var e struct{ ID, Status, Text, Details string }
		if err := json.Unmarshal([]byte(line), &e); err != nil {
			t.Fatalf("not JSON: %q: %v", line, err)
		}
		phases = append(phases, e.ID+"="+e.Status)
	}
	want := "folder ./data=Working folder ./data=Done warning=Warning save=Working save=Done"
	if got := strings.Join(phases, " "); got != want {
		t.Errorf("events %s\nwant %s", got, want)
	}
}

func TestPlainLines(t *testing.T) {
	var out bytes.Buffer
	r := New(&out, Plain)
	r.Start(context.Background(), "restore")
	r.Log("stopping echo")
	r.Task("swap", "Swapping", 0).Done("Swapped")
	r.Warn("the old database could not be removed")
	r.Done(true)
	re := regexp.MustCompile(`^\[ *\d+\.\ds\] (stopping echo|swap Swapping|swap Swapped in \d+ms|swap Swapped in 0s|WARNING: the old database could not be removed)$`)
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	for _, l := range lines {
		if !re.MatchString(l) {
			t.Errorf("line %q", l)
		}
	}
	if len(lines) != 4 {
		t.Errorf("%d lines, want 4:\n%s", len(lines), out.String())
	}
}

func TestNilReporter(t *testing.T) {
	var r *Reporter
	r.Start(context.Background(), "x")
	task := r.Task("a", "b", 1)
	task.Add(1)
	task.Step("c")
	r.Under(task).Task("d", "e", 0).Done("f")
	r.Log("g")
	r.Warn("h")
	r.Done(true)
	if r.Mode() != Quiet {
		t.Error("a nil reporter must be quiet")
	}
}
