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
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"runtime/debug"
	"strings"

	"github.com/kopia/kopia/repo"
	"github.com/kopia/kopia/repo/blob"
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

	// The splitter is fixed when the repository is created (Init): changing it later would
	// re-store everything once. Measured by TestSplitterChoice (splitter_bench_test.go) on two
	// `pg_dump -Fc -Z0` dumps of the benchmark database at scale 0.3 (A 146.8 MB; B 147.3 MB,
	// after scripts/bench-day.sql: 5000 plays, 3500 ratings, playlist edits), zstd-fastest,
	// 2 cores; B added is what the second backup stored:
	//
	//	                      A stored  time (3 runs)  B added  time
	//	DYNAMIC-256K-BUZHASH  42.4 MB   1.3-2.4 s      1.65 MB  0.6-0.9 s
	//	DYNAMIC-512K-BUZHASH  42.6 MB   1.4-2.5 s      1.95 MB  0.5-0.9 s
	//	DYNAMIC-1M-BUZHASH    42.8 MB   1.4-2.7 s      2.54 MB  0.5-0.8 s
	//	DYNAMIC-2M-BUZHASH    42.8 MB   1.8-2.4 s      3.02 MB  0.5-0.7 s
	//	DYNAMIC-4M-BUZHASH    42.9 MB   1.5-2.0 s      4.12 MB  0.6-0.7 s  (kopia's default)
	//	DYNAMIC-1M-RABINKARP  42.8 MB   2.5-2.9 s      2.17 MB  1.0-1.2 s
	//
	// A day's inserts land at the ends of the tables, so every size does well here; changes
	// scattered through a dump (updates and vacuum reusing space) hurt large chunks much more:
	// with 1% of a 300 MB stream changed in 30 places (engine-facts.md), 4M re-stored 189 MB and
	// 1M 56 MB. Smaller than 1M saves little more (0.6-0.9 MB a day here) for 2-4x the contents,
	// and every content is an entry in kopia's index, which each open reads (a 500 GB data
	// folder: ~500k at 1M).
	// The buzhash times overlap between runs and do not separate the sizes; Rabin-Karp is slower.
	splitterAlgorithm = "DYNAMIC-1M-BUZHASH"

	// streamSplitter cuts the streams (the dump) finer than files.tar: a day's updated rows are
	// scattered through a table's COPY data (an updated row leaves its old place), and each
	// dirties the whole chunk it falls in. scripts/bench.sh --scale 1 --repo, a day of change
	// (scripts/bench-day.sql and 20 covers) re-saved: 69.9 MB added with 1M, 16.6 MB with 128K
	// (of 2574 MB of data). (Kopia's AsyncWrites=4 made the first save no faster on 2 cores and
	// its peak RSS 108 MB.)
	// A 1 GB dump is ~8k chunks at 128K: nothing for kopia's index, unlike a data folder's.
	// Set per object, so it needs no new repository.
	streamSplitter = "DYNAMIC-128K-BUZHASH"

	// zstd-fastest: on dump A above it stored 42.8 MB in 1.65 s, kopia's "zstd" 43.5 MB in
	// 2.07 s, "s2-default" 70.6 MB in 0.94 s. Kopia stores a chunk uncompressed by itself when
	// compressing does not make it smaller (content_manager_lock_free.go): media files cost no
	// extra space, only the time of one failed attempt.
	compressor = compression.Name("zstd-fastest")

	// memoryLimit is the Go heap target Open sets when the process has none (no GOMEMLIMIT):
	// without it the heap may double before each GC. TestStreamRSS (300 MB stream + 30 MB tar,
	// with the key derivation and pack size below): peak RSS of save / restore
	//	folder: 58-73 / 50-51 MB with the limit, 57-61 / 52-54 MB without
	//	S3:     66-73 / 51 MB with the limit,    88-92 / 53 MB without
	// (before those two choices: 165 MB without a limit). The product's limit is 100 MB.
	memoryLimit = 40 << 20

	// keyDerivation turns the password into the key that unlocks the repository's keys, at
	// every Open. Kopia's default, scrypt-65536-8-1, allocates 64 MB for it: TestStreamRSS's
	// restore peaked at 94 MB RSS with it and 51 MB with PBKDF2 (save: 86 and 78 MB), against
	// the product's 100 MB. PBKDF2-SHA256 with 600,000 iterations is what OWASP recommends for
	// PBKDF2; a generated password (256 random bits) needs no stretching at all. Fixed at Init;
	// a repository made with scrypt (by the kopia CLI) still opens.
	keyDerivation = "pbkdf2-sha256-600000"

	// maxPackSize is the size of the blobs contents are packed into, kopia's minimum (its
	// default is 20 MB): a writer holds the pack it is filling in memory. TestStreamRSS's save
	// peaked at 64-72 MB RSS with 10 MB packs and 70-86 MB with 20 MB. Kopia may change it later
	// (`kopia repository set-parameters --max-pack-size-mb`).
	maxPackSize = 10 << 20

	contentCacheBytes  = 256 << 20
	metadataCacheBytes = 512 << 20
)

// Repository is an open kopia repository.
type Repository struct {
	rep       repo.Repository
	address   string
	configDir string // temporary: kopia's config file during Open, maintenance's lock file
}

// Init creates a new repository at o.Address. It fails (ErrExists) if one is there. S3: it does not
// create the bucket. With o.Password "" it generates a strong random password (32 random bytes,
// base64url) and returns it; a given password is returned as "". Once the repository exists the
// generated password is returned even with an error (a later step failed): save it regardless.
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
		BlockFormat:                       format.ContentFormat{MutableParameters: format.MutableParameters{Version: format.FormatVersion3, MaxPackSize: maxPackSize}},
		ObjectFormat:                      format.ObjectFormat{Splitter: splitter},
		FormatBlockKeyDerivationAlgorithm: keyDerivation,
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
		return generated, fmt.Errorf("opening the new repository at %s: %w", loc, err)
	}
	defer r.Close(ctx) //nolint:errcheck
	err = repo.WriteSession(ctx, r.rep, repo.WriteSessionOptions{Purpose: "echobackup init"},
		func(ctx context.Context, w repo.RepositoryWriter) error {
			p := maintenance.DefaultParams()
			p.Owner = w.ClientOptions().UsernameAtHost()
			return maintenance.SetParams(ctx, w, &p)
		})
	if err != nil {
		return generated, fmt.Errorf("setting the maintenance owner of the new repository at %s: %w", loc, err)
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

// Open connects to an existing repository. Errors the user can act on are distinct: ErrWrongPassword,
// ErrNotFound (no repository at the address, or no bucket), an unreachable endpoint (named, within
// about 20 s). Open sets the process's Go memory limit to memoryLimit unless GOMEMLIMIT is set.
// The kopia config it writes (storage settings, S3 keys; no password; 0600, in a 0700 temporary
// folder) is removed as soon as kopia has read it; Close removes the folder.
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
	err = writeConfig(r.configFile(), st, cache)
	if err == nil {
		r.rep, err = repo.Open(cctx, r.configFile(), o.Password, &repo.Options{DisableRepositoryLog: true})
	}
	if err == nil {
		// Kopia reads the file only in Open (and to store throttling changes, which we never
		// make), so the S3 keys in it need not stay on disk while we work. The folder stays:
		// maintenance takes its lock file beside the config path.
		err = os.Remove(r.configFile())
	}
	if err != nil {
		if r.rep != nil {
			r.rep.Close(ctx) //nolint:errcheck
		}
		os.RemoveAll(dir)
		return nil, openError(err, loc)
	}
	return r, nil
}

// writeConfig writes the kopia config file that repo.Connect would write, without the trial
// open Connect does: each open derives the key from the password, which takes a good part of
// a second on purpose.
func writeConfig(file string, st blob.Storage, cache string) error {
	ctx := context.Background()
	if _, err := st.GetMetadata(ctx, format.KopiaRepositoryBlobID); err != nil {
		if errors.Is(err, blob.ErrBlobNotFound) {
			return repo.ErrRepositoryNotInitialized
		}
		return err
	}
	ci := st.ConnectionInfo()
	b, err := json.Marshal(repo.LocalConfig{
		Storage: &ci,
		Caching: &content.CachingOptions{
			CacheDirectory:        cache,
			ContentCacheSizeBytes: contentCacheBytes, MetadataCacheSizeBytes: metadataCacheBytes,
		},
		ClientOptions: repo.ClientOptions{Hostname: clientHost, Username: clientUser, Description: "echobackup"},
	})
	if err != nil {
		return err
	}
	return os.WriteFile(file, b, 0o600)
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

// Close disconnects and removes the temporary folder. Caches stay.
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
