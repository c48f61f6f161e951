//go:build e2e

package e2e

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/echo-backup/echo-backup/leftover"
)

// Harness for kill -9 trials, shared by the save, prune and restore trials.

// KillResult is what one command killed by killAt did.
type KillResult struct {
	// Killed: the command still ran when the kill came. Otherwise it had finished with Code.
	Killed  bool
	Code    int
	Elapsed time.Duration // from start to its end (or to the kill)
	Stdout  string
	Stderr  string
}

// killAt starts `docker echobackup ARGS` in the stack's folder, in a process group of its own
// (the docker CLI and the plugin it runs), and kill -9s the whole group after delay, as a
// power cut or the OOM killer would end them: no signal handler, no deferred cleanup runs.
// A delay of 0 kills it at once.
func killAt(t testing.TB, s *Stack, delay time.Duration, args ...string) KillResult {
	t.Helper()
	cmd := exec.Command("docker", append([]string{"echobackup"}, args...)...)
	cmd.Dir, cmd.Env = s.Dir, append(os.Environ(), s.Env...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	start := time.Now()
	if err := cmd.Start(); err != nil {
		t.Fatalf("starting docker echobackup %s: %v", strings.Join(args, " "), err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	res := KillResult{}
	select {
	case err := <-done:
		res.Code = exitCode(err)
	case <-time.After(delay):
		// The group may already be gone: then the command finished in the same instant.
		if err := syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL); err == nil {
			res.Killed = true
		}
		err := <-done
		if !res.Killed {
			res.Code = exitCode(err)
		}
	}
	res.Elapsed = time.Since(start)
	res.Stdout, res.Stderr = stdout.String(), stderr.String()
	return res
}

// killWhen is killAt with the moment chosen by ready, polled every 20 ms (for "while pg_dump's
// helper waits"); it kills after timeout if ready never says yes.
func killWhen(t testing.TB, s *Stack, timeout time.Duration, ready func() bool, args ...string) KillResult {
	t.Helper()
	cmd := exec.Command("docker", append([]string{"echobackup"}, args...)...)
	cmd.Dir, cmd.Env = s.Dir, append(os.Environ(), s.Env...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	start := time.Now()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	deadline := time.After(timeout)
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	res := KillResult{}
	for {
		select {
		case err := <-done:
			res.Code, res.Elapsed = exitCode(err), time.Since(start)
			res.Stdout, res.Stderr = stdout.String(), stderr.String()
			return res
		case <-tick.C:
			if !ready() {
				continue
			}
		case <-deadline:
		}
		res.Killed = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) == nil
		<-done
		res.Elapsed = time.Since(start)
		res.Stdout, res.Stderr = stdout.String(), stderr.String()
		return res
	}
}

func exitCode(err error) int {
	if err == nil {
		return 0
	}
	if ee, ok := err.(*exec.ExitError); ok {
		return ee.ExitCode()
	}
	return -1
}

// spreadDelays are n moments from 0 to a little past d (the command's normal duration), so
// the kills fall in every phase of its run and the last ones after its end.
func spreadDelays(d time.Duration, n int) []time.Duration {
	out := make([]time.Duration, n)
	last := d * 115 / 100
	for i := range out {
		out[i] = last * time.Duration(i) / time.Duration(n-1)
	}
	return out
}

// timed runs `docker echobackup ARGS` to its end and returns its wall time; it fails the test
// unless the command exits 0.
func timed(t testing.TB, s *Stack, args ...string) time.Duration {
	t.Helper()
	start := time.Now()
	if _, errOut, code := s.EchoBackup(args...); code != 0 {
		t.Fatalf("docker echobackup %s: exit %d: %s", strings.Join(args, " "), code, errOut)
	}
	return time.Since(start)
}

// helpersLeft are the project's containers echo-backup made, but for the sentinel: after any
// command has ended there must be none.
func (s *Stack) helpersLeft(t testing.TB) []string {
	t.Helper()
	r := s.Run(RunOpts{Quiet: true}, "docker", "ps", "-a", "--filter", "label="+LabelEchoProject+"="+s.Name,
		"--format", `{{.ID}} {{.Label "com.echobackup.sentinel"}} {{.Label "com.echobackup.helper"}} {{.Status}}`)
	if r.Code != 0 {
		t.Fatalf("docker ps: exit %d: %s", r.Code, r.Stderr)
	}
	var left []string
	for _, line := range nonEmptyLines(r.Stdout) {
		f := strings.Fields(line)
		if len(f) > 1 && f[1] == "1" {
			continue // the sentinel
		}
		left = append(left, line)
	}
	return left
}

// waitNoHelpers polls until the project has no helper container or timeout passes, and says
// how long that took and what is left.
func (s *Stack) waitNoHelpers(t testing.TB, timeout time.Duration) (time.Duration, []string) {
	t.Helper()
	start := time.Now()
	for {
		left := s.helpersLeft(t)
		if len(left) == 0 || time.Since(start) > timeout {
			return time.Since(start), left
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// leftoversIn are the temporary entries of echo-backup in a backup folder (hidden .partial
// archives and spools, transfer folders, records being written).
func leftoversIn(t testing.TB, dir string) []string {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	var out []string
	for _, e := range ents {
		if leftover.Ours(e.Name()) {
			out = append(out, filepath.Join(dir, e.Name()))
		}
	}
	slices.Sort(out)
	return out
}

// runningServices are the stack's services whose containers run, sorted.
func (s *Stack) runningList(t testing.TB) []string {
	t.Helper()
	out := s.MustCompose("ps", "--status", "running", "--services")
	lines := nonEmptyLines(out)
	slices.Sort(lines)
	return lines
}
