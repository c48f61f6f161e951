// Package leftover tells the files a running echobackup command keeps in the backup folder
// (hidden .partial archives, stream spools, transfer folders, records being written) from
// those a killed command left behind. The owner holds a shared flock on each of them for as
// long as it uses it; the kernel drops that lock when the owner dies, however it dies. So an
// entry that can be locked exclusively has no live owner: no PIDs, clocks or ages involved,
// and it holds on a folder shared between hosts where the filesystem supports flock.
package leftover

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
)

// maxTries bounds the retries when a sweep removes a name between its creation and its lock.
const maxTries = 10

// CreateTemp is os.CreateTemp for a file that Sweep must leave alone while f is open.
func CreateTemp(dir, pattern string) (*os.File, error) {
	for range maxTries {
		f, err := os.CreateTemp(dir, pattern)
		if err != nil {
			return nil, err
		}
		ok, err := hold(f, f.Name())
		if err != nil {
			f.Close()
			os.Remove(f.Name())
			return nil, err
		}
		if ok {
			track(f.Name(), 1) // for good: the name is random, and this process removes its own
			return f, nil
		}
		f.Close()
	}
	return nil, fmt.Errorf("creating a file in %s: removed as soon as created, %d times", dir, maxTries)
}

// MkdirTemp is os.MkdirTemp for a folder that Sweep must leave alone until release is called.
func MkdirTemp(dir, pattern string) (path string, release func(), err error) {
	for range maxTries {
		path, err := os.MkdirTemp(dir, pattern)
		if err != nil {
			return "", nil, err
		}
		d, err := os.Open(path)
		if err != nil {
			os.Remove(path)
			return "", nil, err
		}
		ok, err := hold(d, path)
		if err != nil {
			d.Close()
			os.Remove(path)
			return "", nil, err
		}
		if ok {
			track(path, 1)
			return path, func() { track(path, -1); d.Close() }, nil
		}
		d.Close()
	}
	return "", nil, fmt.Errorf("creating a folder in %s: removed as soon as created, %d times", dir, maxTries)
}

// Hold takes another hold on an entry already held, for an owner that must close the
// descriptor it created the entry with (to see its write errors) but keeps using the entry.
func Hold(path string) (release func(), err error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	ok, err := hold(f, path)
	if err == nil && !ok {
		err = fmt.Errorf("%s was removed", path)
	}
	if err != nil {
		f.Close()
		return nil, err
	}
	return func() { f.Close() }, nil
}

// held are the entries this process holds: where flock is emulated with POSIX locks (NFS), a
// process does not conflict with itself, so its own sweep must know them.
var (
	heldMu sync.Mutex
	held   = map[string]int{}
)

func track(path string, n int) {
	path = abs(path)
	heldMu.Lock()
	defer heldMu.Unlock()
	if held[path] += n; held[path] <= 0 {
		delete(held, path)
	}
}

func mine(path string) bool {
	path = abs(path)
	heldMu.Lock()
	defer heldMu.Unlock()
	return held[path] > 0
}

func abs(path string) string {
	if a, err := filepath.Abs(path); err == nil {
		return a
	}
	return path
}

// hold takes the owner's shared lock on f, then checks that name is still f: a sweep that
// locked the new entry before us, in the instant after its creation, may have removed it
// (the lock waits for that sweep to let go).
func hold(f *os.File, name string) (bool, error) {
	if err := flock(f, syscall.LOCK_SH); err != nil {
		return false, fmt.Errorf("locking %s: %w", name, err)
	}
	return same(f, name), nil
}

// same is true when name still refers to the open file f.
func same(f *os.File, name string) bool {
	a, err := f.Stat()
	if err != nil {
		return false
	}
	b, err := os.Lstat(name)
	return err == nil && os.SameFile(a, b)
}

func flock(f *os.File, how int) error {
	raw, err := f.SyscallConn()
	if err != nil {
		return err
	}
	var lockErr error
	err = raw.Control(func(fd uintptr) {
		for {
			if lockErr = syscall.Flock(int(fd), how); !errors.Is(lockErr, syscall.EINTR) {
				return
			}
		}
	})
	return errors.Join(err, lockErr)
}

// The names of what echobackup keeps in a backup folder while it works. Every one starts
// with a dot, so list and latest never take it for a backup.
const (
	partialSuffix = ".partial"          // archives being written, their side streams, spools
	xferPrefix    = ".echobackup-xfer-" // pg_dump and pg_restore transfer folders
	// VerifyPrefix starts verify --deep's scratch folders for its test restore of the files.
	VerifyPrefix = ".echobackup-verify-"
	// RecordSuffix ends a record's temporary file (store.WriteRecord) before its rename.
	RecordSuffix = ".echobackup.tmp"
	// Older records' temporary files: ".<archive>.tar.zst.verified.<random>.tmp".
	oldRecordSuffix = ".tmp"
	oldRecordInfix  = ".tar.zst."
)

// Ours tells whether a name in a backup folder is one of the temporary entries above. It
// never matches a backup, a record, the lock or anything a user would put there.
func Ours(name string) bool {
	if !strings.HasPrefix(name, ".") || name == "." || name == ".." {
		return false
	}
	switch {
	case strings.HasSuffix(name, partialSuffix) && len(name) > len("."+partialSuffix):
		return true
	case strings.HasPrefix(name, xferPrefix) && len(name) > len(xferPrefix):
		return true
	case strings.HasPrefix(name, VerifyPrefix) && len(name) > len(VerifyPrefix):
		return true
	case strings.HasSuffix(name, RecordSuffix) && len(name) > len("."+RecordSuffix):
		return true
	case strings.HasSuffix(name, oldRecordSuffix) && strings.Contains(name, oldRecordInfix):
		return true
	}
	return false
}

// Removed is one leftover Sweep took away.
type Removed struct {
	Path string
	Size int64
}

// Sweep removes the temporary entries in dir that no live process holds. A failure on one
// entry is reported and the others are still tried.
func Sweep(dir string) ([]Removed, error) {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("looking for leftovers in %s: %w", dir, err)
	}
	var out []Removed
	var errs []error
	for _, e := range ents {
		if !Ours(e.Name()) {
			continue
		}
		path := filepath.Join(dir, e.Name())
		r, err := sweepOne(path)
		if err != nil {
			errs = append(errs, err)
		} else if r != nil {
			out = append(out, *r)
		}
	}
	return out, errors.Join(errs...)
}

// sweepOne removes path if it can take the exclusive lock, keeping the lock while it removes
// so that no owner can take it meanwhile. nil, nil: path has a live owner (or is gone).
func sweepOne(path string) (*Removed, error) {
	if mine(path) {
		return nil, nil
	}
	// O_NONBLOCK: never wait on a FIFO; O_NOFOLLOW: never a link's target. A file is opened
	// for writing too, which an exclusive flock needs on NFS.
	mode := os.O_RDONLY
	if st, err := os.Lstat(path); err == nil && st.Mode().IsRegular() {
		mode = os.O_RDWR
	}
	f, err := os.OpenFile(path, mode|syscall.O_NOFOLLOW|syscall.O_NONBLOCK, 0)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("checking %s: %w", path, err)
	}
	defer f.Close()
	if err := flock(f, syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		if errors.Is(err, syscall.EWOULDBLOCK) || errors.Is(err, syscall.EBADF) {
			return nil, nil // a live command holds it, or the filesystem cannot say: keep it
		}
		return nil, fmt.Errorf("checking %s: %w", path, err)
	}
	if !same(f, path) {
		return nil, nil
	}
	size := du(path)
	if err := os.RemoveAll(path); err != nil {
		return nil, fmt.Errorf("removing %s: %w", path, err)
	}
	return &Removed{Path: path, Size: size}, nil
}

// du is the space path takes, for the message: a leftover archive can be large.
func du(path string) int64 {
	var n int64
	_ = filepath.WalkDir(path, func(_ string, d os.DirEntry, err error) error {
		if err == nil {
			if info, err := d.Info(); err == nil && info.Mode().IsRegular() {
				n += info.Size()
			}
		}
		return nil
	})
	return n
}
