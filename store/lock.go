package store

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/docker/go-units"

	"github.com/echo-backup/echo-backup/leftover"
)

// ErrBusy says another echobackup process is working in the backup folder.
var ErrBusy = errors.New("another echobackup command is working in the backup folder")

const lockName = ".echobackup.lock"

// Lock is a held lock of a backup folder: the command that takes it owns it and passes it
// down to what works in the folder (a save, a prune, a restore's safety backup), which then
// does not take it again. One flock per process and folder: a second one on a new descriptor
// would wait for ourselves.
type Lock struct {
	dir string // absolute
	f   *os.File
}

// Holds says whether l is the lock of dir; a nil or unlocked Lock holds nothing.
func (l *Lock) Holds(dir string) bool {
	if l == nil || l.f == nil {
		return false
	}
	abs, err := filepath.Abs(dir)
	return err == nil && abs == l.dir
}

// Unlock releases the lock; the kernel also drops it when the process dies.
func (l *Lock) Unlock() {
	if l != nil && l.f != nil {
		l.f.Close()
		l.f = nil
	}
}

// Acquire serialises the commands that write or delete in dir (save, restore, prune, pin, the
// scheduled run) across processes, waiting for the holder; waiting is told once who that is.
// The kernel drops the lock when its holder dies, so a killed command never leaves it taken.
// Taking it sweeps what killed commands left in dir (Swept).
func Acquire(ctx context.Context, dir string, waiting func(holder string)) (*Lock, error) {
	told := false
	for {
		l, err := TryAcquire(dir)
		if !errors.Is(err, ErrBusy) {
			return l, err
		}
		if !told && waiting != nil {
			waiting(strings.TrimPrefix(err.Error(), ErrBusy.Error()+" "))
			told = true
		}
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("waiting for the lock of %s: %w", dir, ctx.Err())
		case <-time.After(250 * time.Millisecond):
		}
	}
}

// TryLock is TryAcquire for a probe (is the folder free?); it returns the release.
func TryLock(dir string) (unlock func(), err error) {
	l, err := TryAcquire(dir)
	if err != nil {
		return nil, err
	}
	return l.Unlock, nil
}

// TryAcquire is Acquire without waiting: ErrBusy, with the holder, when another command (in
// this process too) has it.
func TryAcquire(dir string) (*Lock, error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, err
	}
	if err := PrepareDir(dir); err != nil {
		return nil, err
	}
	f, err := os.OpenFile(filepath.Join(dir, lockName), os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("opening the lock of %s: %w", dir, err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		holder, _ := os.ReadFile(f.Name())
		f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, fmt.Errorf("%w (%s)", ErrBusy, strings.TrimSpace(string(holder)))
		}
		return nil, fmt.Errorf("locking %s: %w", dir, err)
	}
	// Who holds it, for the message the next one prints.
	f.Truncate(0)
	f.WriteAt([]byte("pid "+strconv.Itoa(os.Getpid())+", since "+time.Now().Format(time.RFC3339)+"\n"), 0)
	sweep(dir)
	return &Lock{dir: abs, f: f}, nil
}

// Swept is told of each leftover the lock's sweep removes, and of a sweep that failed; nil
// says nothing. The plugin points it at stderr.
var Swept func(msg string)

// sweep removes what killed commands left in dir (package leftover), now that no other
// echobackup command works there. It never fails the command that took the lock.
func sweep(dir string) {
	removed, err := leftover.Sweep(dir)
	if Swept == nil {
		return
	}
	for _, r := range removed {
		Swept(fmt.Sprintf("Removed %s (%s), left by an echobackup command that did not finish", r.Path, units.BytesSize(float64(r.Size))))
	}
	if err != nil {
		Swept("WARNING: " + err.Error())
	}
}
