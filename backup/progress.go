package backup

import (
	"fmt"
	"io"
	"time"

	"github.com/docker/go-units"
)

type counter interface{ Written() int64 }

// startProgress prints the bytes written and the rate twice a second until stopped.
func startProgress(out io.Writer, w counter) (stop func()) {
	if out == nil {
		return func() {}
	}
	done := make(chan struct{})
	finished := make(chan struct{})
	start := time.Now()
	go func() {
		defer close(finished)
		t := time.NewTicker(500 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-done:
				fmt.Fprint(out, "\r\033[K")
				return
			case <-t.C:
				n := w.Written()
				rate := float64(n) / time.Since(start).Seconds()
				fmt.Fprintf(out, "\r\033[Ksaving: %s written, %s/s", units.HumanSize(float64(n)), units.HumanSize(rate))
			}
		}
	}()
	return func() { close(done); <-finished }
}
