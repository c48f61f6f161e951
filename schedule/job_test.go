package schedule

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/echo-backup/echo-backup/ping"
)

func TestLastRun(t *testing.T) {
	dir := t.TempDir()
	if r, err := ReadLast(dir); r != nil || err != nil {
		t.Fatalf("no run yet: %v %v", r, err)
	}
	want := Run{Started: time.Now().UTC().Truncate(time.Second), OK: false, Error: "boom"}
	if err := WriteLast(dir, want); err != nil {
		t.Fatal(err)
	}
	if r, err := ReadLast(dir); err != nil || !r.Started.Equal(want.Started) || r.Error != "boom" {
		t.Fatalf("read back %+v %v", r, err)
	}
}

type hit struct{ method, path, query, body string }

func recorder(t *testing.T, status func(n int) int) (*httptest.Server, func() []hit) {
	var mu sync.Mutex
	var hits []hit
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		mu.Lock()
		hits = append(hits, hit{r.Method, r.URL.Path, r.URL.RawQuery, string(b)})
		n := len(hits)
		mu.Unlock()
		w.WriteHeader(status(n))
	}))
	t.Cleanup(srv.Close)
	return srv, func() []hit { mu.Lock(); defer mu.Unlock(); return append([]hit(nil), hits...) }
}

func TestPing(t *testing.T) {
	srv, hits := recorder(t, func(int) int { return 200 })
	p := ping.Ping{URL: srv.URL + "/ping/uuid-1?create=1"}
	ctx := context.Background()
	if err := p.Start(ctx); err != nil {
		t.Fatal(err)
	}
	if err := p.Success(ctx, "saved 3 MB"); err != nil {
		t.Fatal(err)
	}
	if err := p.Fail(ctx, "pg_dump exited 1"); err != nil {
		t.Fatal(err)
	}
	want := []hit{{"GET", "/ping/uuid-1/start", "create=1", ""}, {"POST", "/ping/uuid-1", "create=1", "saved 3 MB"},
		{"POST", "/ping/uuid-1/fail", "create=1", "pg_dump exited 1"}}
	got := hits()
	if len(got) != len(want) {
		t.Fatalf("hits %+v", got)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("hit %d: %+v, want %+v", i, got[i], want[i])
		}
	}
}

func TestPingRetriesThenGivesUp(t *testing.T) {
	srv, hits := recorder(t, func(n int) int {
		if n < 3 {
			return 503
		}
		return 200
	})
	p := ping.Ping{URL: srv.URL, Tries: 3, Wait: time.Millisecond}
	if err := p.Success(context.Background(), "ok"); err != nil || len(hits()) != 3 {
		t.Fatalf("after two 503s: %v, %d hits", err, len(hits()))
	}
	srv2, hits2 := recorder(t, func(int) int { return 404 })
	err := ping.Ping{URL: srv2.URL + "/secret-uuid", Tries: 2, Wait: time.Millisecond}.Start(context.Background())
	if err == nil || len(hits2()) != 2 || strings.Contains(err.Error(), "secret-uuid") {
		t.Fatalf("404: %v, %d hits", err, len(hits2()))
	}
	if err := (ping.Ping{}).Start(context.Background()); err != nil {
		t.Errorf("no URL: %v", err)
	}
}
