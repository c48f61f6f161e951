package store

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// The lock is a handle its owner passes down: a second take in the same process is refused
// (a flock on a new descriptor would wait for ourselves), and a save given the handle goes on.
func TestLockIsAHandlePassedDown(t *testing.T) {
	dir := t.TempDir()
	outer, err := Acquire(context.Background(), dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := TryAcquire(dir); !errors.Is(err, ErrBusy) {
		t.Fatalf("a second take in the same process: %v, want ErrBusy", err)
	}
	if !outer.Holds(dir) || !outer.Holds(dir+"/.") || outer.Holds(t.TempDir()) {
		t.Error("Holds does not tell the folder")
	}
	var none *Lock
	if none.Holds(dir) {
		t.Error("a nil Lock holds a folder")
	}
	outer.Unlock()
	outer.Unlock() // twice is harmless
	again, err := TryAcquire(dir)
	if err != nil {
		t.Fatalf("after Unlock: %v", err)
	}
	again.Unlock()
}

// The lock must keep out another process: run this test binary as the holder.
func TestLockExcludesOtherProcesses(t *testing.T) {
	if dir := os.Getenv("ECHOBACKUP_LOCK_HOLDER"); dir != "" {
		unlock, err := TryLock(dir)
		if err != nil {
			os.Exit(3)
		}
		defer unlock()
		os.Stdout.WriteString("held\n")
		time.Sleep(2 * time.Second)
		return
	}
	dir := t.TempDir()
	holder := exec.Command(os.Args[0], "-test.run=^TestLockExcludesOtherProcesses$")
	holder.Env = append(os.Environ(), "ECHOBACKUP_LOCK_HOLDER="+dir)
	out, err := holder.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := holder.Start(); err != nil {
		t.Fatal(err)
	}
	defer holder.Wait()
	buf := make([]byte, 5)
	if _, err := out.Read(buf); err != nil || string(buf) != "held\n" {
		t.Fatalf("holder did not take the lock: %q %v", buf, err)
	}
	if _, err := TryLock(dir); !errors.Is(err, ErrBusy) || !strings.Contains(err.Error(), "pid ") {
		t.Fatalf("TryLock while another process holds it: %v, want ErrBusy naming the pid", err)
	}
	var told string
	l, err := Acquire(context.Background(), dir, func(h string) { told = h })
	if err != nil {
		t.Fatalf("Acquire after the holder exits: %v", err)
	}
	l.Unlock()
	if !strings.HasPrefix(told, "(pid ") {
		t.Fatalf("waiting was told %q, want the holder's pid", told)
	}
}
