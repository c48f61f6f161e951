package repository

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/kopia/kopia/repo/blob"
	"github.com/kopia/kopia/repo/blob/filesystem"
	"github.com/kopia/kopia/repo/blob/s3"
	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"
)

// Options say which repository to use and how to open it.
type Options struct {
	Address  string // "/abs/folder", "file:///abs/folder", "s3://bucket/prefix" (prefix optional)
	Password string // never logged or printed
	// S3 credentials and endpoint, as every S3 tool takes them: AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY,
	// AWS_REGION, AWS_ENDPOINT_URL ("http://127.0.0.1:PORT" allowed: plain http then).
	S3       S3Config
	CacheDir string // "": $XDG_CACHE_HOME (or ~/.cache)/echobackup/repository/<hash of address>, 0700
}

// S3Config holds what an S3 client needs besides the bucket.
type S3Config struct{ AccessKey, SecretKey, SessionToken, Region, Endpoint string }

// FromEnv fills Options from ECHOBACKUP_REPO, ECHOBACKUP_PASSWORD_FILE, ECHOBACKUP_PASSWORD and the
// AWS_* variables, read through lookup. Address "" means no repository is configured.
//
// ECHOBACKUP_PASSWORD_FILE wins over ECHOBACKUP_PASSWORD when both are set: the file is the form we
// recommend (it stays out of `docker inspect` and process listings), so a stale variable left in a
// .env must not override it. The file must not be readable by group or others.
func FromEnv(lookup func(string) (string, bool)) (Options, error) {
	get := func(k string) string { v, _ := lookup(k); return v }
	o := Options{
		Address:  strings.TrimSpace(get("ECHOBACKUP_REPO")),
		Password: get("ECHOBACKUP_PASSWORD"),
		S3: S3Config{
			AccessKey:    get("AWS_ACCESS_KEY_ID"),
			SecretKey:    get("AWS_SECRET_ACCESS_KEY"),
			SessionToken: get("AWS_SESSION_TOKEN"),
			Region:       get("AWS_REGION"),
			Endpoint:     get("AWS_ENDPOINT_URL"),
		},
	}
	if o.S3.Region == "" {
		o.S3.Region = get("AWS_DEFAULT_REGION")
	}
	if file := get("ECHOBACKUP_PASSWORD_FILE"); file != "" {
		pw, err := readPasswordFile(file)
		if err != nil {
			return Options{}, err
		}
		o.Password = pw
	}
	return o, nil
}

func readPasswordFile(file string) (string, error) {
	fi, err := os.Stat(file)
	if err != nil {
		return "", fmt.Errorf("reading the repository password file (ECHOBACKUP_PASSWORD_FILE): %w", err)
	}
	if perm := fi.Mode().Perm(); perm&0o077 != 0 {
		return "", fmt.Errorf("repository password file %s is readable by others (mode %04o): run `chmod 600 %s`", file, perm, file)
	}
	b, err := os.ReadFile(file)
	if err != nil {
		return "", fmt.Errorf("reading the repository password file (ECHOBACKUP_PASSWORD_FILE): %w", err)
	}
	pw := strings.TrimRight(string(b), "\r\n")
	if pw == "" {
		return "", fmt.Errorf("repository password file %s is empty", file)
	}
	return pw, nil
}

// location is a parsed Address.
type location struct {
	folder         string // filesystem repository
	bucket, prefix string // S3 repository
}

func parseAddress(addr string) (location, error) {
	switch {
	case addr == "":
		return location{}, errors.New("no repository address given (ECHOBACKUP_REPO)")
	case strings.HasPrefix(addr, "s3://"):
		rest := strings.TrimPrefix(addr, "s3://")
		bucket, prefix, _ := strings.Cut(rest, "/")
		if bucket == "" {
			return location{}, fmt.Errorf("repository address %q names no bucket", addr)
		}
		if prefix != "" && !strings.HasSuffix(prefix, "/") {
			prefix += "/"
		}
		return location{bucket: bucket, prefix: prefix}, nil
	case strings.HasPrefix(addr, "file://"):
		u, err := url.Parse(addr)
		if err != nil || u.Host != "" || !filepath.IsAbs(u.Path) {
			return location{}, fmt.Errorf("repository address %q: want file:///absolute/folder", addr)
		}
		return location{folder: filepath.Clean(u.Path)}, nil
	case filepath.IsAbs(addr):
		return location{folder: filepath.Clean(addr)}, nil
	case strings.Contains(addr, "://"):
		return location{}, fmt.Errorf("repository address %q: only folders and s3:// are supported", addr)
	default:
		return location{}, fmt.Errorf("repository address %q: a folder must be an absolute path", addr)
	}
}

func (l location) String() string {
	if l.bucket != "" {
		return "s3://" + l.bucket + "/" + l.prefix
	}
	return l.folder
}

// s3Endpoint splits AWS_ENDPOINT_URL into kopia's host[:port] and TLS flag.
func s3Endpoint(raw string) (host string, plain bool, err error) {
	if raw == "" {
		return "s3.amazonaws.com", false, nil
	}
	if !strings.Contains(raw, "://") {
		return raw, false, nil
	}
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" {
		return "", false, fmt.Errorf("S3 endpoint %q (AWS_ENDPOINT_URL) is not a URL", raw)
	}
	switch u.Scheme {
	case "http":
		return u.Host, true, nil
	case "https":
		return u.Host, false, nil
	}
	return "", false, fmt.Errorf("S3 endpoint %q (AWS_ENDPOINT_URL): scheme must be http or https", raw)
}

// connectTimeout bounds everything done before the repository is open, so an unreachable S3
// endpoint fails in seconds instead of kopia's retries with backoff of about two minutes.
const connectTimeout = 20 * time.Second

// storage opens the blob storage behind o. create: make the folder (never a bucket).
func storage(ctx context.Context, o Options, loc location, create bool) (blob.Storage, error) {
	if loc.folder != "" {
		return folderStorage(ctx, loc.folder, create)
	}
	return s3Storage(ctx, o.S3, loc)
}

func folderStorage(ctx context.Context, folder string, create bool) (blob.Storage, error) {
	if !create {
		if _, err := os.Stat(folder); errors.Is(err, os.ErrNotExist) {
			return nil, fmt.Errorf("%w: no repository at %s (the folder does not exist)", ErrNotFound, folder)
		}
	}
	st, err := filesystem.New(ctx, &filesystem.Options{
		Path:          folder,
		FileMode:      0o600,
		DirectoryMode: 0o700,
	}, create)
	if err != nil {
		return nil, fmt.Errorf("opening repository folder %s: %w", folder, err)
	}
	return st, nil
}

func s3Storage(ctx context.Context, c S3Config, loc location) (blob.Storage, error) {
	host, plain, err := s3Endpoint(c.Endpoint)
	if err != nil {
		return nil, err
	}
	if err := checkBucket(ctx, c, host, plain, loc.bucket); err != nil {
		return nil, err
	}
	st, err := s3.New(ctx, &s3.Options{
		BucketName:      loc.bucket,
		Prefix:          loc.prefix,
		Endpoint:        host,
		DoNotUseTLS:     plain,
		AccessKeyID:     c.AccessKey,
		SecretAccessKey: c.SecretKey,
		SessionToken:    c.SessionToken,
		Region:          c.Region,
	}, false)
	if err != nil {
		return nil, fmt.Errorf("opening S3 bucket %q at %s: %w", loc.bucket, host, err)
	}
	return st, nil
}

// checkBucket fails fast and clearly before kopia's retrying wrapper gets a chance to retry a
// refused connection or a missing bucket for minutes.
func checkBucket(ctx context.Context, c S3Config, host string, plain bool, bucket string) error {
	d := net.Dialer{Timeout: 10 * time.Second}
	addr := host
	if _, _, err := net.SplitHostPort(host); err != nil {
		addr = net.JoinHostPort(host, map[bool]string{true: "80", false: "443"}[plain])
	}
	conn, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return fmt.Errorf("S3 endpoint %s is unreachable: %w", host, err)
	}
	conn.Close()

	cli, err := minio.New(host, &minio.Options{
		Creds:      credentials.NewStaticV4(c.AccessKey, c.SecretKey, c.SessionToken),
		Secure:     !plain,
		Region:     c.Region,
		MaxRetries: 2,
	})
	if err != nil {
		return fmt.Errorf("S3 endpoint %s: %w", host, err)
	}
	ok, err := cli.BucketExists(ctx, bucket)
	if err != nil {
		return fmt.Errorf("checking S3 bucket %q at %s: %w", bucket, host, err)
	}
	if !ok {
		return fmt.Errorf("%w: S3 bucket %q does not exist at %s (create it first)", ErrNotFound, bucket, host)
	}
	return nil
}

// cacheDir is where kopia keeps its (encrypted) content and index caches for this repository.
func cacheDir(o Options, loc location) (string, error) {
	if o.CacheDir != "" {
		return o.CacheDir, nil
	}
	base, err := os.UserCacheDir()
	if err != nil {
		return "", fmt.Errorf("finding a cache folder for the repository: %w", err)
	}
	// The endpoint too: the same bucket name on two S3 services is two repositories.
	sum := sha256.Sum256([]byte(o.S3.Endpoint + "\n" + loc.String()))
	return filepath.Join(base, "echobackup", "repository", hex.EncodeToString(sum[:8])), nil
}
