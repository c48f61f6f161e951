//go:build e2e

package e2e

import (
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

// TestStreamRoundTrip: `save --output -` into a file and `restore -` from it after
// `docker compose down -v` bring back the identical state; the save adds nothing to the
// backup folder, not even for a moment; verify and restore take the stream file too. Peak RSS
// of both sides is logged.
func TestStreamRoundTrip(t *testing.T) {
	for _, fixture := range []string{"seed", "custom"} {
		t.Run(fixture, func(t *testing.T) {
			s := NewStack(t, fixture)
			s.Up()
			want := s.state()
			running := s.runningServices(t)
			backups := filepath.Join(s.Dir, "backups")
			stream := filepath.Join(t.TempDir(), "stream.tar.zst")
			project := strings.Join(s.ProjectArgs(), " ")

			stop := watchFolder(t, backups)
			r := s.Run(RunOpts{}, "bash", "-c", `set -o pipefail; /usr/bin/time -v docker echobackup `+project+` save --output - 2>"$2" >"$1"; rc=$?; cat "$2" >&2; exit $rc`,
				"bash", stream, stream+".err")
			if added := stop(); len(added) > 0 {
				t.Errorf("save --output - added to the backup folder: %v", added)
			}
			if r.Code != 0 {
				t.Fatalf("save --output -: exit %d\n%s", r.Code, r.Stderr)
			}
			t.Logf("save --output -: peak RSS %s, %s", maxRSS(r.Stderr), fileSize(t, stream))

			if out, errOut, code := s.EchoBackup(append(s.ProjectArgs(), "verify", stream)...); code != 0 {
				t.Fatalf("verify of a stream file: exit %d\n%s%s", code, out, errOut)
			}

			s.MustCompose("down", "-v", "--timeout", "1")
			if s.DataVolume == "" {
				os.RemoveAll(s.DataDir())
			}
			r = s.Run(RunOpts{}, "bash", "-c", `/usr/bin/time -v docker echobackup `+project+` restore - --yes <"$1"`, "bash", stream)
			if r.Code != 0 {
				t.Fatalf("restore -: exit %d\n%s", r.Code, r.Stderr)
			}
			t.Logf("restore -: peak RSS %s", maxRSS(r.Stderr))
			assertSameState(t, "after down -v and restore -", want, s.state())
			if got := s.runningServices(t); got != running {
				t.Errorf("running after restore -: %s, before: %s", got, running)
			}
			assertNoSpool(t, s)

			// `restore FILE` of the same stream, over changed data.
			s.change(t)
			if out, code := s.restore(stream, "--yes", "--no-safety-backup"); code != 0 {
				t.Fatalf("restore of a stream file: exit %d\n%s", code, out)
			}
			assertSameState(t, "after restore of the stream file", want, s.state())
		})
	}
}

// TestStreamRestoreRefusesDamage: a stream cut short and one with a byte flipped in the middle
// are refused at the end of the stream, after staging: everything staged is rolled back, the
// live data and the running services are unchanged, and no staging is left.
func TestStreamRestoreRefusesDamage(t *testing.T) {
	s := NewStack(t, "seed")
	s.Up()
	stream := filepath.Join(t.TempDir(), "stream.tar.zst")
	project := strings.Join(s.ProjectArgs(), " ")
	if r := s.Run(RunOpts{}, "bash", "-c", `docker echobackup `+project+` save --output - >"$1"`, "bash", stream); r.Code != 0 {
		t.Fatalf("save --output -: exit %d\n%s", r.Code, r.Stderr)
	}
	s.change(t)
	before := s.state()
	running := s.runningServices(t)
	data, err := os.ReadFile(stream)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name string
		data []byte
	}{
		{"cut at three quarters", data[:len(data)*3/4]},
		{"cut before the footer", data[:len(data)-10]},
		{"a byte flipped in the middle", flipped(data, len(data)/2)},
	} {
		bad := filepath.Join(t.TempDir(), "bad.tar.zst")
		if err := os.WriteFile(bad, c.data, 0o600); err != nil {
			t.Fatal(err)
		}
		r := s.Run(RunOpts{}, "bash", "-c", `docker echobackup `+project+` restore - --yes <"$1"`, "bash", bad)
		if r.Code == 0 {
			t.Fatalf("%s: restore - succeeded\n%s", c.name, r.Stdout)
		}
		t.Logf("%s: refused: %s", c.name, lastLine(r.Stderr))
		if got := s.runningServices(t); got != running {
			t.Errorf("%s: running after a refused restore: %s, before: %s", c.name, got, running)
		}
		assertSameState(t, c.name, before, s.state())
		s.assertNoRestoreLeftovers(t, c.name)
		if left, _ := filepath.Glob(filepath.Join(s.Dir, ".*echobackup*")); len(left) > 0 {
			t.Errorf("%s: staging left behind: %v", c.name, left)
		}
		assertNoSpool(t, s)
	}
}

// watchFolder notes every name that appears in dir until stop, besides the folder's lock.
func watchFolder(t *testing.T, dir string) (stop func() []string) {
	t.Helper()
	names := func() []string {
		ents, _ := os.ReadDir(dir)
		var out []string
		for _, e := range ents {
			out = append(out, e.Name())
		}
		return out
	}
	before := names()
	done := make(chan struct{})
	var mu sync.Mutex
	var added []string
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			for _, n := range names() {
				mu.Lock()
				if !slices.Contains(before, n) && !slices.Contains(added, n) && n != ".echobackup.lock" {
					added = append(added, n)
				}
				mu.Unlock()
			}
			select {
			case <-done:
				return
			case <-time.After(20 * time.Millisecond):
			}
		}
	}()
	return func() []string {
		close(done)
		wg.Wait()
		return added
	}
}

var maxRSSLine = regexp.MustCompile(`Maximum resident set size \(kbytes\): (\d+)`)

// maxRSS is /usr/bin/time -v's peak RSS of the largest process it waited for.
func maxRSS(stderr string) string {
	m := maxRSSLine.FindStringSubmatch(stderr)
	if m == nil {
		return "unknown"
	}
	var kb int
	fmt.Sscan(m[1], &kb)
	return fmt.Sprintf("%.1f MB", float64(kb)/1024)
}

func fileSize(t *testing.T, path string) string {
	st, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	return fmt.Sprintf("%d bytes", st.Size())
}

func lastLine(s string) string {
	lines := nonEmptyLines(s)
	if len(lines) == 0 {
		return ""
	}
	return lines[len(lines)-1]
}

// TestRestoreThroughTCPEngine: an engine reached over TCP is not this machine's as far as the
// plugin can tell, so the dump goes into the database container through the engine: a folder
// archive's by a tar of known size, a stream's (size unknown until its end) through a shell's
// stdin. Both restore the identical state. The TCP side is a plain byte relay to the engine's
// own socket, started by the test.
func TestRestoreThroughTCPEngine(t *testing.T) {
	s := NewStack(t, "seed")
	s.Up()
	want := s.state()
	saved := s.save(t)
	stream := filepath.Join(t.TempDir(), "stream.tar.zst")
	project := strings.Join(s.ProjectArgs(), " ")
	if r := s.Run(RunOpts{}, "bash", "-c", `docker echobackup `+project+` save --output - >"$1"`, "bash", stream); r.Code != 0 {
		t.Fatalf("save --output -: exit %d\n%s", r.Code, r.Stderr)
	}
	host := strings.TrimSpace(s.MustDocker("context", "inspect", "--format", "{{.Endpoints.docker.Host}}"))
	sock, ok := strings.CutPrefix(host, "unix://")
	if !ok {
		t.Fatalf("the suite's engine is at %s, not a unix socket", host)
	}
	tcp := relayTCP(t, sock)
	env := []string{"DOCKER_HOST=tcp://" + tcp}

	s.change(t)
	r := s.Run(RunOpts{Env: env}, "docker", append(append([]string{"echobackup"}, s.ProjectArgs()...), "restore", saved.Path, "--yes", "--no-safety-backup")...)
	if r.Code != 0 {
		t.Fatalf("restore FILE through TCP: exit %d\n%s", r.Code, r.Stderr)
	}
	assertSameState(t, "after restore FILE through TCP", want, s.state())

	s.change(t)
	r = s.Run(RunOpts{Env: env}, "bash", "-c", `docker echobackup `+project+` restore - --yes --no-safety-backup <"$1"`, "bash", stream)
	if r.Code != 0 {
		t.Fatalf("restore - through TCP: exit %d\n%s", r.Code, r.Stderr)
	}
	assertSameState(t, "after restore - through TCP", want, s.state())
	s.assertNoRestoreLeftovers(t, "after the restores through TCP")
}

// relayTCP listens on a loopback port and relays every connection to the unix socket, both
// ways, half-closes included (an exec's stdin ends with one).
func relayTCP(t *testing.T, sock string) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				u, err := net.Dial("unix", sock)
				if err != nil {
					return
				}
				defer u.Close()
				done := make(chan struct{}, 2)
				go func() { io.Copy(u, c); u.(*net.UnixConn).CloseWrite(); done <- struct{}{} }()
				go func() { io.Copy(c, u); c.(*net.TCPConn).CloseWrite(); done <- struct{}{} }()
				<-done
				<-done
			}()
		}
	}()
	return ln.Addr().String()
}
