package repository

import (
	"bufio"
	"context"
	"errors"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"
)

// s3Server starts versitygw through scripts/s3.sh for the test and returns its S3 settings. It
// skips only when versitygw is not built and ECHOBACKUP_S3_TESTS is unset; with
// ECHOBACKUP_S3_TESTS=1 it builds it (if needed) and fails when it cannot run.
func s3Server(t *testing.T) S3Config {
	t.Helper()
	script, err := filepath.Abs("../scripts/s3.sh")
	if err != nil {
		t.Fatal(err)
	}
	required := os.Getenv("ECHOBACKUP_S3_TESTS") == "1"
	bin := os.Getenv("ECHOBACKUP_VERSITYGW")
	if bin == "" {
		cache := os.Getenv("ECHOBACKUP_E2E_CACHE")
		if cache == "" {
			home, _ := os.UserHomeDir()
			cache = filepath.Join(home, ".cache", "echobackup-e2e")
		}
		bin = filepath.Join(cache, "versitygw-v1.8.0", "versitygw")
	}
	if _, err := os.Stat(bin); err != nil {
		if !required {
			t.Skipf("versitygw is not built (%s) and ECHOBACKUP_S3_TESTS is unset: scripts/s3.sh build", bin)
		}
		if out, err := exec.Command(script, "build").CombinedOutput(); err != nil {
			t.Fatalf("scripts/s3.sh build: %v\n%s", err, out)
		}
	}
	dir := t.TempDir()
	if out, err := exec.Command(script, "start", dir).CombinedOutput(); err != nil {
		t.Fatalf("scripts/s3.sh start: %v\n%s", err, out)
	}
	t.Cleanup(func() {
		if out, err := exec.Command(script, "stop", dir).CombinedOutput(); err != nil {
			t.Errorf("scripts/s3.sh stop: %v\n%s", err, out)
		}
	})
	f, err := os.Open(filepath.Join(dir, "env"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	env := map[string]string{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if k, v, ok := strings.Cut(sc.Text(), "="); ok {
			env[k] = v
		}
	}
	return S3Config{
		AccessKey: env["AWS_ACCESS_KEY_ID"], SecretKey: env["AWS_SECRET_ACCESS_KEY"],
		Region: env["AWS_REGION"], Endpoint: env["AWS_ENDPOINT_URL"],
	}
}

func makeBucket(t *testing.T, c S3Config, bucket string) {
	t.Helper()
	host, plain, err := s3Endpoint(c.Endpoint)
	if err != nil {
		t.Fatal(err)
	}
	cli, err := minio.New(host, &minio.Options{Creds: credentials.NewStaticV4(c.AccessKey, c.SecretKey, ""), Secure: !plain, Region: c.Region})
	if err != nil {
		t.Fatal(err)
	}
	if err := cli.MakeBucket(context.Background(), bucket, minio.MakeBucketOptions{Region: c.Region}); err != nil {
		t.Fatal(err)
	}
}

func TestS3RoundTrip(t *testing.T) {
	c := s3Server(t)
	makeBucket(t, c, "backups")
	roundTrip(t, Options{Address: "s3://backups/echo", S3: c, CacheDir: t.TempDir()})
}

func TestS3MissingBucket(t *testing.T) {
	c := s3Server(t)
	o := Options{Address: "s3://nobucket/x", Password: "pw", S3: c, CacheDir: t.TempDir()}
	if _, err := Init(context.Background(), o); !errors.Is(err, ErrNotFound) || !strings.Contains(err.Error(), `"nobucket"`) {
		t.Fatalf("Init: want ErrNotFound naming the bucket, got %v", err)
	}
	if _, err := Open(context.Background(), o); !errors.Is(err, ErrNotFound) || !strings.Contains(err.Error(), `"nobucket"`) {
		t.Fatalf("Open: want ErrNotFound naming the bucket, got %v", err)
	}
	// A bucket with no repository in it.
	makeBucket(t, c, "empty")
	o.Address = "s3://empty"
	if _, err := Open(context.Background(), o); !errors.Is(err, ErrNotFound) {
		t.Fatalf("Open of an empty bucket: want ErrNotFound, got %v", err)
	} else if strings.Contains(err.Error(), c.SecretKey) {
		t.Fatalf("error shows the secret key: %v", err)
	}
}

// TestS3Unreachable needs no server: a port nothing listens on.
func TestS3Unreachable(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	endpoint := "127.0.0.1:" + strconv.Itoa(port)
	o := Options{Address: "s3://bucket", Password: "pw", CacheDir: t.TempDir(),
		S3: S3Config{AccessKey: "a", SecretKey: "s", Region: "us-east-1", Endpoint: "http://" + endpoint}}
	start := time.Now()
	_, err = Open(context.Background(), o)
	took := time.Since(start)
	t.Logf("Open of a closed port: %v after %v", err, took)
	if err == nil || !strings.Contains(err.Error(), endpoint) || took > 20*time.Second {
		t.Fatalf("want an error naming %s within 20 s, got %v after %v", endpoint, err, took)
	}
}

// TestS3Silent: an endpoint that accepts connections and never answers fails within the connect
// timeout, naming the endpoint.
func TestS3Silent(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			defer c.Close()
		}
	}()
	endpoint := l.Addr().String()
	o := Options{Address: "s3://bucket", Password: "pw", CacheDir: t.TempDir(),
		S3: S3Config{AccessKey: "a", SecretKey: "s", Region: "us-east-1", Endpoint: "http://" + endpoint}}
	start := time.Now()
	_, err = Open(context.Background(), o)
	took := time.Since(start)
	t.Logf("Open of a silent endpoint: %v after %v", err, took)
	if err == nil || !strings.Contains(err.Error(), endpoint) || took > connectTimeout+5*time.Second {
		t.Fatalf("want an error naming %s within %v, got %v after %v", endpoint, connectTimeout, err, took)
	}
}
