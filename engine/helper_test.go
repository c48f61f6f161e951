package engine

import (
	"errors"
	"os/exec"
	"testing"
	"time"
)

// The watchdog passes its command's exit code through while stdin stays open, and ends the
// command once stdin closes, as the engine closes it when our attach connection goes.
func TestWatchdog(t *testing.T) {
	run := func(closeStdin bool, cmd ...string) (int, time.Duration) {
		t.Helper()
		c := exec.Command("sh", append([]string{"-c", watchdog, "sh"}, cmd...)...)
		stdin, err := c.StdinPipe()
		if err != nil {
			t.Fatal(err)
		}
		start := time.Now()
		if err := c.Start(); err != nil {
			t.Fatal(err)
		}
		if closeStdin {
			time.Sleep(200 * time.Millisecond)
			stdin.Close()
		} else {
			defer stdin.Close()
		}
		done := make(chan error, 1)
		go func() { done <- c.Wait() }()
		select {
		case err := <-done:
			var ee *exec.ExitError
			if errors.As(err, &ee) {
				return ee.ExitCode(), time.Since(start)
			}
			return 0, time.Since(start)
		case <-time.After(10 * time.Second):
			c.Process.Kill()
			t.Fatalf("%v: still running 10 s later", cmd)
		}
		return -1, 0
	}
	if code, _ := run(false, "sh", "-c", "exit 3"); code != 3 {
		t.Errorf("exit code %d, want 3", code)
	}
	if code, _ := run(false, "true"); code != 0 {
		t.Errorf("exit code %d, want 0", code)
	}
	code, took := run(true, "sleep", "86400")
	if code == 0 || took > 3*time.Second {
		t.Errorf("with stdin closed: exit %d after %s, want a non-zero exit within a second or so", code, took)
	}
}
