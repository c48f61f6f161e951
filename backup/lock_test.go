package backup

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"
)

func TestLockIsReentrantInProcess(t *testing.T) {
	dir := t.TempDir()
	outer, err := Lock(context.Background(), dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	inner, err := TryLock(dir)
	if err != nil {
		t.Fatalf("a second hold in the same process: %v", err)
	}
	inner()
	outer()
	if len(held) != 0 {
		t.Fatalf("holds left after both unlocks: %v", held)
	}
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
	unlock, err := Lock(context.Background(), dir, func(h string) { told = h })
	if err != nil {
		t.Fatalf("Lock after the holder exits: %v", err)
	}
	unlock()
	if !strings.HasPrefix(told, "(pid ") {
		t.Fatalf("waiting was told %q, want the holder's pid", told)
	}
}
