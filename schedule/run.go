package schedule

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/echo-backup/echo-backup/store"
)

// ErrSkipped says a run did nothing because another echobackup command holds the backup
// folder's lock.
var ErrSkipped = errors.New("scheduled run skipped")

// LogLimit is about how much of the log a run keeps from the runs before it.
const LogLimit = 1 << 20

// pingName keeps the ping URL in the backup folder, readable by its owner only: on a command
// line, in the crontab, in a unit file or in the environment of a lingering shell, other users
// could read it, and whoever has it can send false all-clears.
const pingName = ".schedule.ping"

// Work is what a run does inside the lock: save, verify and prune. It returns the summary for
// the log and the success ping, and the new backup's path.
type Work func(ctx context.Context, lock *store.Lock) (summary, backup string, err error)

// RunJob runs work as the scheduled job: under the backup folder's lock, with the log kept
// private and short, the start ping, a record of the run for status and a ping of its result.
// A run that finds the lock taken does nothing and returns ErrSkipped: the holder pings its own
// result. Any other failure, taking the lock included, is recorded and pinged as a failed run.
// Progress lines go to logw, each with the time.
// Pinger is the dead-man's switch a run reports to (package ping); its failures are logged,
// never the run's.
type Pinger interface {
	Start(ctx context.Context) error
	Success(ctx context.Context, summary string) error
	Fail(ctx context.Context, msg string) error
}

func RunJob(ctx context.Context, dir string, ping Pinger, logw io.Writer, work Work) error {
	logf := func(format string, args ...any) {
		fmt.Fprintf(logw, time.Now().Format(time.RFC3339)+" "+format+"\n", args...)
	}
	// The shell that appends to the log created it with its umask.
	if err := os.Chmod(LogPath(dir), 0o600); err != nil && !errors.Is(err, os.ErrNotExist) {
		logf("WARNING: %v", err)
	}
	run := Run{Started: time.Now().UTC()}
	lock, err := store.TryAcquire(dir)
	switch {
	case errors.Is(err, store.ErrBusy):
		logf("skipped: %v", err)
		return ErrSkipped
	case err == nil:
		defer lock.Unlock()
		if terr := TrimLog(LogPath(dir), LogLimit); terr != nil {
			logf("WARNING: %v", terr)
		}
		logf("started: save, verify and prune into %s", dir)
		if perr := ping.Start(ctx); perr != nil {
			logf("WARNING: %v", perr)
		}
		run.Summary, run.Backup, err = work(ctx, lock)
	}
	run.Finished, run.OK = time.Now().UTC(), err == nil
	if err != nil {
		run.Error = err.Error()
	}
	if werr := WriteLast(dir, run); werr != nil {
		logf("WARNING: %v", werr)
	}
	if err != nil {
		logf("FAILED: %v", err)
		if perr := ping.Fail(ctx, err.Error()); perr != nil {
			logf("WARNING: %v", perr)
		}
		return err
	}
	logf("OK: %s", run.Summary)
	if perr := ping.Success(ctx, run.Summary); perr != nil {
		logf("WARNING: %v", perr)
	}
	return nil
}

// TrimLog cuts the log at path to about its last limit bytes, whole lines only, in place: the
// running job appends to it through a descriptor its shell opened, so the file must stay the
// same file.
func TrimLog(path string, limit int64) error {
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("shortening the log: %w", err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil || fi.Size() <= limit {
		return err
	}
	tail := make([]byte, limit)
	if _, err := f.ReadAt(tail, fi.Size()-limit); err != nil {
		return fmt.Errorf("shortening the log: %w", err)
	}
	if i := bytes.IndexByte(tail, '\n'); i >= 0 {
		tail = tail[i+1:] // the cut falls inside a line: drop the rest of it
	}
	if _, err := f.WriteAt(tail, 0); err != nil {
		return fmt.Errorf("shortening the log: %w", err)
	}
	if err := f.Truncate(int64(len(tail))); err != nil {
		return fmt.Errorf("shortening the log: %w", err)
	}
	return nil
}

// Prepare readies the backup folder for the job at install time: the log exists and only its
// owner reads it, and the ping URL is kept for the job (or forgotten when url is empty).
func Prepare(dir, url string) error {
	f, err := os.OpenFile(LogPath(dir), os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o600)
	if err != nil {
		return fmt.Errorf("creating the log: %w", err)
	}
	f.Close()
	if err := os.Chmod(LogPath(dir), 0o600); err != nil {
		return fmt.Errorf("creating the log: %w", err)
	}
	return SavePing(dir, url)
}

// SavePing keeps the ping URL in the backup folder, readable by its owner only; an empty url
// removes it.
func SavePing(dir, url string) error {
	path := filepath.Join(dir, pingName)
	if url == "" {
		if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("forgetting the ping URL: %w", err)
		}
		return nil
	}
	if err := store.WriteRecord(path, []byte(url+"\n")); err != nil {
		return fmt.Errorf("keeping the ping URL: %w", err)
	}
	return nil
}

// ReadPing returns the ping URL kept in the backup folder; "" when there is none.
func ReadPing(dir string) (string, error) {
	b, err := os.ReadFile(filepath.Join(dir, pingName))
	if errors.Is(err, os.ErrNotExist) {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("reading the ping URL: %w", err)
	}
	return strings.TrimSpace(string(b)), nil
}
