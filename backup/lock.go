package backup

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/docker/go-units"

	"github.com/echo-backup/echo-backup/leftover"
)

// ErrBusy says another echobackup process is working in the backup folder.
var ErrBusy = errors.New("another echobackup command is working in the backup folder")

const lockName = ".echobackup.lock"

// held counts this process's holds per folder: restore's safety backup saves while restore
// holds the lock, and a second flock on a new descriptor would wait for ourselves.
var (
	heldMu sync.Mutex
	held   = map[string]*folderLock{}
)

type folderLock struct {
	f *os.File
	n int
}

// Lock serialises the commands that write or delete in dir (save, restore, prune, the
// scheduled run) across processes, waiting for the holder; waiting is told once who that is.
// The kernel drops the lock when its holder dies, so a killed command never leaves it taken.
func Lock(ctx context.Context, dir string, waiting func(holder string)) (unlock func(), err error) {
	told := false
	for {
		unlock, err := TryLock(dir)
		if !errors.Is(err, ErrBusy) {
			return unlock, err
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

// TryLock is Lock without waiting: ErrBusy, with the holder, when another process has it.
func TryLock(dir string) (unlock func(), err error) {
	key, err := filepath.Abs(dir)
	if err != nil {
		return nil, err
	}
	heldMu.Lock()
	defer heldMu.Unlock()
	if l := held[key]; l != nil {
		l.n++
		return func() { release(key) }, nil
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
	held[key] = &folderLock{f: f, n: 1}
	sweep(dir)
	return func() { release(key) }, nil
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

func release(key string) {
	heldMu.Lock()
	defer heldMu.Unlock()
	l := held[key]
	if l == nil {
		return
	}
	if l.n--; l.n == 0 {
		l.f.Close()
		delete(held, key)
	}
}
