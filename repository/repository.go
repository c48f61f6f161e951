// Package repository keeps backups in a kopia repository: encrypted, deduplicated, compressed,
// on a local folder (disk, NAS mount) or S3-compatible storage. One backup is one kopia snapshot
// whose root directory holds (a real kopia directory tree, browsable with the kopia CLI):
//
//	manifest.json   the archive manifest (archive.Manifest JSON), written last
//	files.tar       the backup's file members as a plain, uncompressed POSIX tar
//	<stream names>  each stream member (e.g. "db/echo.dump") as its own file
package repository

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"runtime/debug"
	"strings"

	"github.com/kopia/kopia/repo"
	"github.com/kopia/kopia/repo/compression"
	"github.com/kopia/kopia/repo/content"
	"github.com/kopia/kopia/repo/format"
	"github.com/kopia/kopia/repo/maintenance"
)

var (
	// ErrWrongPassword: the repository exists but the password does not open it.
	ErrWrongPassword = errors.New("wrong repository password")
	// ErrNotFound: no repository (or bucket, or snapshot) where one was expected.
	ErrNotFound = errors.New("not found")
	// ErrExists: Init found a repository already there.
	ErrExists = errors.New("a repository already exists")
)

const (
	// The client identity is the same on every server: maintenance runs only for its owner, and a
	// deployment migrated to a new server must still be able to run it with the password alone.
	clientUser = "echobackup"
	clientHost = "repository"

	// Splitter is fixed when the repository is created. Measured by TestSplitterChoice on two
	// pg_dump -Fc -Z0 dumps of the benchmark database (scale 0.3, 136 MB) before and after
	// scripts/bench-day.sql: see splitterFigures in splitter_bench_test.go.
	splitterAlgorithm = "DYNAMIC-1M-BUZHASH"

	// zstd-fastest: the dumps and tars are large, and the fastest level already gets most of
	// zstd's gain on them. Kopia stores a chunk uncompressed by itself when compressing it does
	// not make it smaller (content_manager_lock_free.go), so media files cost no extra space.
	compressor = compression.Name("zstd-fastest")

	// memoryLimit is the Go heap target set when the caller did not set GOMEMLIMIT: kopia's
	// pack buffers and pools otherwise let RSS grow past 200 MB on a large stream, and the
	// product's limit is 100 MB for save and restore (TestStreamRSS measures it).
	memoryLimit = 40 << 20

	contentCacheBytes  = 256 << 20
	metadataCacheBytes = 512 << 20
)

// Repository is an open kopia repository.
type Repository struct {
	rep       repo.Repository
	address   string
	configDir string // temporary, holds kopia's config file (it names the storage and S3 keys)
}

// Init creates a new repository at o.Address. It fails (ErrExists) if one is there. S3: it does not
// create the bucket. With o.Password "" it generates a strong random password and returns it; a given
// password is returned as "".
func Init(ctx context.Context, o Options) (generated string, err error) {
	return initialize(ctx, o, splitterAlgorithm)
}

// initialize is Init with a given splitter (the splitter measurement tries several).
func initialize(ctx context.Context, o Options, splitter string) (generated string, err error) {
	loc, err := parseAddress(o.Address)
	if err != nil {
		return "", err
	}
	password := o.Password
	if password == "" {
		password, err = newPassword()
		if err != nil {
			return "", err
		}
		generated = password
	}
	cctx, cancel := context.WithTimeout(ctx, connectTimeout)
	defer cancel()
	st, err := storage(cctx, o, loc, true)
	if err != nil {
		return "", fmt.Errorf("creating repository: %w", err)
	}
	defer st.Close(ctx) //nolint:errcheck

	err = repo.Initialize(cctx, st, &repo.NewRepositoryOptions{
		BlockFormat:  format.ContentFormat{MutableParameters: format.MutableParameters{Version: format.FormatVersion3}},
		ObjectFormat: format.ObjectFormat{Splitter: splitter},
	}, password)
	if errors.Is(err, repo.ErrAlreadyInitialized) {
		return "", fmt.Errorf("%w at %s", ErrExists, loc)
	}
	if err != nil {
		return "", fmt.Errorf("creating repository at %s: %w", loc, err)
	}

	o.Password = password
	r, err := Open(ctx, o)
	if err != nil {
		return "", fmt.Errorf("opening the new repository at %s: %w", loc, err)
	}
	defer r.Close(ctx) //nolint:errcheck
	err = repo.WriteSession(ctx, r.rep, repo.WriteSessionOptions{Purpose: "echobackup init"},
		func(ctx context.Context, w repo.RepositoryWriter) error {
			p := maintenance.DefaultParams()
			p.Owner = w.ClientOptions().UsernameAtHost()
			return maintenance.SetParams(ctx, w, &p)
		})
	if err != nil {
		return "", fmt.Errorf("setting the maintenance owner of the new repository at %s: %w", loc, err)
	}
	return generated, nil
}

func newPassword() (string, error) {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("generating a repository password: %w", err)
	}
	return base64.RawURLEncoding.EncodeToString(b), nil
}

// Open connects to an existing repository.
func Open(ctx context.Context, o Options) (*Repository, error) {
	loc, err := parseAddress(o.Address)
	if err != nil {
		return nil, err
	}
	if o.Password == "" {
		return nil, errors.New("no repository password given (ECHOBACKUP_PASSWORD_FILE or ECHOBACKUP_PASSWORD)")
	}
	cache, err := cacheDir(o, loc)
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(cache, 0o700); err != nil {
		return nil, fmt.Errorf("creating the repository cache folder: %w", err)
	}
	limitMemory()

	cctx, cancel := context.WithTimeout(ctx, connectTimeout)
	defer cancel()
	st, err := storage(cctx, o, loc, false)
	if err != nil {
		return nil, err
	}
	defer st.Close(ctx) //nolint:errcheck

	dir, err := os.MkdirTemp("", "echobackup-repo-")
	if err != nil {
		return nil, fmt.Errorf("creating a temporary folder for the repository connection: %w", err)
	}
	r := &Repository{address: loc.String(), configDir: dir}
	err = repo.Connect(cctx, r.configFile(), st, o.Password, &repo.ConnectOptions{
		ClientOptions: repo.ClientOptions{Hostname: clientHost, Username: clientUser, Description: "echobackup"},
		CachingOptions: content.CachingOptions{
			CacheDirectory:        cache,
			ContentCacheSizeBytes: contentCacheBytes, MetadataCacheSizeBytes: metadataCacheBytes,
		},
	})
	if err == nil {
		r.rep, err = repo.Open(cctx, r.configFile(), o.Password, &repo.Options{DisableRepositoryLog: true})
	}
	if err != nil {
		os.RemoveAll(dir)
		return nil, openError(err, loc)
	}
	return r, nil
}

func openError(err error, loc location) error {
	switch {
	case errors.Is(err, repo.ErrRepositoryNotInitialized):
		return fmt.Errorf("%w: no repository at %s", ErrNotFound, loc)
	case errors.Is(err, repo.ErrInvalidPassword):
		return fmt.Errorf("opening repository %s: %w", loc, ErrWrongPassword)
	case errors.Is(err, context.DeadlineExceeded):
		return fmt.Errorf("opening repository %s: no answer within %v: %w", loc, connectTimeout, err)
	}
	return fmt.Errorf("opening repository %s: %w", loc, err)
}

// limitMemory sets a soft Go memory limit unless the process already has one (GOMEMLIMIT).
func limitMemory() {
	if os.Getenv("GOMEMLIMIT") != "" {
		return
	}
	if debug.SetMemoryLimit(-1) == math.MaxInt64 {
		debug.SetMemoryLimit(memoryLimit)
	}
}

func (r *Repository) configFile() string { return filepath.Join(r.configDir, "kopia.config") }

// Close disconnects and removes the temporary kopia config (it holds S3 credentials). Caches stay.
func (r *Repository) Close(ctx context.Context) error {
	err := r.rep.Close(ctx)
	if rerr := os.RemoveAll(r.configDir); err == nil && rerr != nil {
		err = rerr
	}
	if err != nil {
		return fmt.Errorf("closing repository %s: %w", r.address, err)
	}
	return nil
}

// Address is safe to print: it never contains secrets.
func (r *Repository) Address() string { return strings.TrimSuffix(r.address, "/") }

func (r *Repository) direct() (repo.DirectRepository, error) {
	dr, ok := r.rep.(repo.DirectRepository)
	if !ok {
		return nil, errors.New("repository is not a direct connection")
	}
	return dr, nil
}
