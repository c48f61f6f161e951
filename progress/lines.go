package progress

import (
	"bytes"
	"fmt"
	"io"
	"strings"
	"sync"
	"time"
)

// timedLines prefixes every line written to it with the seconds since start, the way restore
// has always logged ("[ 12.3s] stopping echo"), so a log from cron says where the time went.
type timedLines struct {
	mu    sync.Mutex
	out   io.Writer
	start time.Time
	now   func() time.Time
	buf   bytes.Buffer
}

func (t *timedLines) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.buf.Write(p)
	for {
		line, err := t.buf.ReadString('\n')
		if err != nil { // no newline yet: keep the rest for the next write
			t.buf.Reset()
			t.buf.WriteString(line)
			return len(p), nil
		}
		// compose's plain writer starts every line with its (empty) dry-run prefix and a space.
		line = strings.TrimSpace(line)
		if _, err := fmt.Fprintf(t.out, "[%5.1fs] %s\n", t.now().Sub(t.start).Seconds(), line); err != nil {
			return len(p), err
		}
	}
}
