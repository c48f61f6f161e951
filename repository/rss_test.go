package repository

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"
)

// rssLimit is the product's limit on peak RSS for save and restore.
const rssLimit = 100 << 20

// TestStreamRSS saves a 300 MB stream (with a 30 MB files.tar written beside it) and restores it,
// each in a child process of its own, and checks the peak RSS (VmHWM) of each against rssLimit.
func TestStreamRSS(t *testing.T) {
	if testing.Short() {
		t.Skip("writes 330 MB")
	}
	dir := t.TempDir()
	streamRSS(t, Options{Address: filepath.Join(dir, "repo"), Password: "rss", CacheDir: filepath.Join(dir, "cache")})
}

// TestStreamRSSS3 is TestStreamRSS on S3 (versitygw).
func TestStreamRSSS3(t *testing.T) {
	if testing.Short() {
		t.Skip("writes 330 MB")
	}
	c := s3Server(t)
	makeBucket(t, c, "rss")
	streamRSS(t, Options{Address: "s3://rss", Password: "rss", S3: c, CacheDir: t.TempDir()})
}

func streamRSS(t *testing.T, o Options) {
	if _, err := Init(context.Background(), o); err != nil {
		t.Fatal(err)
	}
	for _, step := range []string{"save", "restore"} {
		cmd := exec.Command(os.Args[0], "-test.run=^TestRSSChild$", "-test.v")
		// The child reads its options as the plugin does, through FromEnv.
		cmd.Env = append(os.Environ(), "ECHOBACKUP_RSS_CHILD="+step, "ECHOBACKUP_RSS_CACHE="+o.CacheDir,
			"ECHOBACKUP_REPO="+o.Address, "ECHOBACKUP_PASSWORD="+o.Password, "ECHOBACKUP_PASSWORD_FILE=",
			"AWS_ACCESS_KEY_ID="+o.S3.AccessKey, "AWS_SECRET_ACCESS_KEY="+o.S3.SecretKey,
			"AWS_REGION="+o.S3.Region, "AWS_ENDPOINT_URL="+o.S3.Endpoint)
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("%s child: %v\n%s", step, err, out)
		}
		var hwm int64
		var took string
		for _, line := range strings.Split(string(out), "\n") {
			if v, ok := strings.CutPrefix(strings.TrimSpace(line), "RSS "); ok {
				f := strings.Fields(v)
				hwm, _ = strconv.ParseInt(f[0], 10, 64)
				took = f[1]
			}
		}
		t.Logf("%s child: %s", step, grepRSS(string(out)))
		if os.Getenv("ECHOBACKUP_RSS_VERBOSE") != "" {
			t.Logf("%s child output:\n%s", step, out)
		}
		if hwm == 0 {
			t.Fatalf("%s child printed no RSS:\n%s", step, out)
		}
		t.Logf("%s of 300 MB stream + 30 MB tar: peak RSS %.1f MB, took %s", step, float64(hwm)/(1<<20), took)
		if hwm > rssLimit {
			t.Errorf("%s: peak RSS %d MB is over the %d MB limit", step, hwm>>20, rssLimit>>20)
		}
	}
}

// TestRSSChild is the child process of TestStreamRSS.
func TestRSSChild(t *testing.T) {
	step := os.Getenv("ECHOBACKUP_RSS_CHILD")
	if step == "" {
		t.Skip("child of TestStreamRSS")
	}
	ctx := context.Background()
	start := time.Now()
	o, err := FromEnv(os.LookupEnv)
	if err != nil {
		t.Fatal(err)
	}
	o.CacheDir = os.Getenv("ECHOBACKUP_RSS_CACHE")
	r, err := Open(ctx, o)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close(ctx)
	const streamSize, tarSize = 300 << 20, 30 << 20
	switch step {
	case "save":
		b, err := r.NewBackup(ctx, "rss")
		if err != nil {
			t.Fatal(err)
		}
		done := make(chan error, 1)
		go func() {
			_, err := io.Copy(b.Tar(), genData(2, tarSize))
			done <- err
		}()
		w, err := b.Stream("db/echo.dump")
		if err != nil {
			t.Fatal(err)
		}
		if _, err := io.Copy(w, genData(1, streamSize)); err != nil {
			t.Fatal(err)
		}
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
		if err := <-done; err != nil {
			t.Fatal(err)
		}
		if _, err := b.Commit(ctx, []byte("{}"), time.Now(), nil); err != nil {
			t.Fatal(err)
		}
	case "restore":
		s, err := r.Find(ctx, "rss", "latest")
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range []struct {
			seed uint64
			size int64
			open func() (io.ReadCloser, error)
		}{
			{1, streamSize, func() (io.ReadCloser, error) { return r.OpenStream(ctx, s.ID, "db/echo.dump") }},
			{2, tarSize, func() (io.ReadCloser, error) { return r.OpenTar(ctx, s.ID) }},
		} {
			rc, err := m.open()
			if err != nil {
				t.Fatal(err)
			}
			got := sha256.New()
			if _, err := io.Copy(got, rc); err != nil {
				t.Fatal(err)
			}
			rc.Close()
			want := sha256.New()
			io.Copy(want, genData(m.seed, m.size))
			if !bytes.Equal(got.Sum(nil), want.Sum(nil)) {
				t.Fatalf("restored data differs: %s", hex.EncodeToString(got.Sum(nil)))
			}
		}
	}
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	fmt.Printf("RSS %d %v heapsys=%dMB heapinuse=%dMB stacks=%dMB sys=%dMB\n", vmHWM(t), time.Since(start).Round(time.Millisecond), ms.HeapSys>>20, ms.HeapInuse>>20, ms.StackSys>>20, ms.Sys>>20)
}

// genData streams n reproducible bytes: a dump-like mix of incompressible and repetitive blocks.
func genData(seed uint64, n int64) io.Reader {
	rng := rand.New(rand.NewPCG(seed, 7))
	var block int
	return io.LimitReader(readerFunc(func(p []byte) (int, error) {
		block++
		if len(p) > 64<<10 {
			p = p[:64<<10]
		}
		if block%3 == 0 {
			for i := range p {
				p[i] = "0123456789abcdef\t\n"[rng.IntN(18)]
			}
		} else {
			for i := 0; i+8 <= len(p); i += 8 {
				v := rng.Uint64()
				for j := range 8 {
					p[i+j] = byte(v >> (8 * j))
				}
			}
		}
		return len(p), nil
	}), n)
}

type readerFunc func([]byte) (int, error)

func (f readerFunc) Read(p []byte) (int, error) { return f(p) }

// vmHWM is this process's peak resident set size in bytes.
func vmHWM(t *testing.T) int64 {
	f, err := os.Open("/proc/self/status")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "VmHWM:"); ok {
			kb, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			return kb << 10
		}
	}
	t.Fatal("no VmHWM in /proc/self/status")
	return 0
}

func grepRSS(out string) string {
	for _, line := range strings.Split(out, "\n") {
		if strings.HasPrefix(strings.TrimSpace(line), "RSS ") {
			return strings.TrimSpace(line)
		}
	}
	return ""
}
