//go:build e2e

package e2e

import (
	"bufio"
	"crypto/rand"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// S3 is a versitygw server on 127.0.0.1 serving the folder Data (scripts/s3.sh).
type S3 struct {
	Dir  string
	Data string // a bucket is a folder in it
	Env  []string
}

// StartS3 starts an S3 server for the test and stops it at the end. With size > 0 its data
// folder is a tmpfs of that many bytes: a disk that fills up.
func StartS3(t *testing.T, size int64) *S3 {
	t.Helper()
	dir := t.TempDir()
	s := &S3{Dir: dir, Data: filepath.Join(dir, "data")}
	if err := os.MkdirAll(s.Data, 0o700); err != nil {
		t.Fatal(err)
	}
	if size > 0 {
		if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size="+strconv.FormatInt(size, 10), "ebt-s3", s.Data).CombinedOutput(); err != nil {
			t.Fatalf("mounting a small tmpfs for the S3 server: %v %s", err, out)
		}
		t.Cleanup(func() { exec.Command("umount", "-l", s.Data).Run() })
	}
	script := filepath.Join(moduleRoot, "scripts", "s3.sh")
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
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if line := strings.TrimSpace(sc.Text()); line != "" && !strings.HasPrefix(line, "#") {
			s.Env = append(s.Env, strings.TrimPrefix(line, "export "))
		}
	}
	return s
}

// Bucket makes a bucket: versitygw's posix backend keeps each in a folder of its own.
func (s *S3) Bucket(t *testing.T) string {
	t.Helper()
	name := "ebt-" + randomHex(4)
	if err := os.Mkdir(filepath.Join(s.Data, name), 0o700); err != nil {
		t.Fatal(err)
	}
	return name
}

// TestRepoS3: the offsite repository on a real S3 server. Save, list, verify --deep, restore
// after down -v, prune with maintenance; then the faults a user meets: a wrong password, an
// endpoint that does not answer, a bucket that does not exist, a pack deleted behind the
// repository's back (verify must say so).
func TestRepoS3(t *testing.T) {
	srv := StartS3(t, 0)
	bucket := srv.Bucket(t)
	s := NewStack(t, "custom")
	s.Up()
	r := newRepoEnv(t, "s3://"+bucket+"/echo", srv.Env...)
	s.mustEB(r, "repo", "init")
	want := s.state()
	s.mustEB(r, "save")
	s.change(t)
	second := s.state()
	s.mustEB(r, "save")
	if got := s.repoList(r); len(got) != 2 {
		t.Fatalf("list: %+v", got)
	}
	s.mustEB(r, "verify", "--deep", "latest")
	first := s.repoList(r)[1]
	s.destroy()
	s.mustEB(r, "restore", first.Name, "--yes")
	assertSameState(t, "restored from S3 after down -v", want, s.state())
	s.mustEB(r, "prune", "--keep-last", "1", "--keep-daily", "0", "--keep-weekly", "0", "--keep-monthly", "0")
	if got := s.repoList(r); len(got) != 1 {
		t.Fatalf("after prune: %+v", got)
	}

	// A new, empty server (engine 2, an empty folder) needs only the address and the
	// password: the compose and env files come out of the snapshot first.
	restoreOnNewServer(t, s, r, second)

	if res := s.eb(newRepoEnv(t, r.addr, srv.Env...), "list"); res.Code != 2 || !strings.Contains(res.Stderr, "password is wrong") {
		t.Errorf("a wrong password: exit %d\n%s", res.Code, res.Stderr)
	}
	missing := newRepoEnv(t, "s3://no-such-bucket-"+randomHex(3)+"/echo", srv.Env...)
	missing.password = r.password
	if res := s.eb(missing, "list"); res.Code == 0 || !strings.Contains(res.Stderr, "no-such-bucket") {
		t.Errorf("a bucket that does not exist: exit %d\n%s", res.Code, res.Stderr)
	}
	closed := freePort(t)
	deadEnv := append(withoutKey(srv.Env, "AWS_ENDPOINT_URL"), "AWS_ENDPOINT_URL=http://127.0.0.1:"+closed)
	t0 := time.Now()
	if res := s.eb(newRepoEnv(t, r.addr, deadEnv...), "list"); res.Code == 0 || !strings.Contains(res.Stderr, "127.0.0.1:"+closed) {
		t.Errorf("an endpoint that does not answer: exit %d\n%s", res.Code, res.Stderr)
	}
	if took := time.Since(t0); took > 45*time.Second {
		t.Errorf("an endpoint that does not answer took %s to fail", took)
	}

	// A pack deleted behind the repository's back: verify fails and says what is missing.
	packs, _ := filepath.Glob(filepath.Join(srv.Data, bucket, "echo", "p*"))
	if len(packs) == 0 {
		packs, _ = filepath.Glob(filepath.Join(srv.Data, bucket, "echo*", "p*"))
	}
	if len(packs) == 0 {
		t.Fatalf("no pack blob found under %s", filepath.Join(srv.Data, bucket))
	}
	for _, p := range packs {
		os.Remove(p)
	}
	if res := s.eb(r, "verify", "latest"); res.Code == 0 {
		t.Errorf("verify after the packs were deleted passed:\n%s", res.Stdout)
	}
}

// TestRepoS3FullDisk: the disk under the S3 server fills up during a save. The save fails and
// says so; the backup before it is still listed and verifies.
func TestRepoS3FullDisk(t *testing.T) {
	srv := StartS3(t, 48<<20)
	bucket := srv.Bucket(t)
	s := NewStack(t, "seed")
	s.Up()
	r := newRepoEnv(t, "s3://"+bucket+"/echo", srv.Env...)
	s.mustEB(r, "repo", "init")
	s.mustEB(r, "save")
	big := filepath.Join(s.DataDir(), "uploads", "big.bin")
	os.MkdirAll(filepath.Dir(big), 0o755)
	writeRandom(t, big, 64<<20)
	res := s.eb(r, "save")
	if res.Code == 0 {
		t.Fatalf("a save onto a full S3 disk succeeded:\n%s", res.Stderr)
	}
	if !strings.Contains(res.Stderr, "the storage of the repository "+r.addr+" is full") || !strings.Contains(res.Stderr, "nothing was saved") {
		t.Errorf("the failed save does not say that the repository's storage is full:\n%s", res.Stderr)
	}
	t.Logf("the failed save said:\n%s", tail(res.Stderr, 1500))
	os.Remove(big)
	if got := s.repoList(r); len(got) != 1 {
		t.Fatalf("after the failed save: %+v", got)
	}
	s.mustEB(r, "verify", "latest")
}

// restoreOnNewServer restores the repository's latest backup of s in an empty folder against
// a second engine, and checks that the files were written and the state is want.
func restoreOnNewServer(t *testing.T, s *Stack, r repoEnv, want state) {
	t.Helper()
	eng := StartEngine2(t)
	eng.LoadImage(t, pgImage)
	dir := filepath.Join(t.TempDir(), "newserver")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	tgt, _ := eng.NewServer(t, s, dir)
	res := tgt.Run(RunOpts{Env: r.env()}, "docker", "echobackup", "restore", "latest", "--yes")
	r.assertNoSecret(t, res.Stdout+res.Stderr)
	if res.Code != 0 {
		t.Fatalf("restore --repo latest on a new server: exit %d\n%s", res.Code, res.Stderr)
	}
	for _, f := range s.ComposeFiles {
		if _, err := os.Stat(filepath.Join(dir, f)); err != nil {
			t.Errorf("the new server's folder lacks %s: %v", f, err)
		}
	}
	if !strings.Contains(res.Stderr, "from the backup") {
		t.Errorf("restore did not say it wrote the deployment files:\n%s", res.Stderr)
	}
	assertSameState(t, "the new server after restore from the repository", want, tgt.state())
}

func writeRandom(t *testing.T, path string, n int64) {
	t.Helper()
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	buf := make([]byte, 1<<20)
	for written := int64(0); written < n; written += int64(len(buf)) {
		if _, err := rand.Read(buf); err != nil {
			t.Fatal(err)
		}
		if _, err := f.Write(buf); err != nil {
			t.Fatal(err)
		}
	}
}

func freePort(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	_, port, _ := net.SplitHostPort(l.Addr().String())
	return port
}

func withoutKey(env []string, key string) []string {
	var out []string
	for _, kv := range env {
		if !strings.HasPrefix(kv, key+"=") {
			out = append(out, kv)
		}
	}
	return out
}
