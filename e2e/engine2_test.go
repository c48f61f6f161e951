//go:build e2e

package e2e

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"
)

// Engine2 is a second Docker engine on this machine, standing in for another host: its own
// network namespace (so its own docker0, networks and published ports: the same compose file
// runs on both engines without clashes), its own data and exec roots, and a docker context
// pointing at it in the suite's temporary DOCKER_CONFIG. Both engines see the same host
// folders, so only named volumes prove that data moved.
type Engine2 struct {
	Context string
	Host    string // unix://…/docker.sock
	dir     string
	netns   string
	cmd     *exec.Cmd
	exited  chan error
}

// StartEngine2 starts the engine; t.Cleanup stops it and removes the context, the namespace
// and every folder, failed test or not. It needs root, ip, nsenter and dockerd: without them
// the test fails, it does not skip.
func StartEngine2(t *testing.T) *Engine2 {
	t.Helper()
	for _, tool := range []string{"ip", "nsenter", "dockerd"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Fatalf("a second engine needs %s: %v", tool, err)
		}
	}
	if os.Geteuid() != 0 {
		t.Fatalf("a second engine needs root (network namespaces, dockerd)")
	}
	driver, err := output(context.Background(), "", nil, "docker", "info", "--format", "{{.Driver}}")
	if err != nil {
		t.Fatalf("reading the first engine's storage driver: %v", err)
	}
	id := randomHex(4)
	// Short: the socket's path must stay under the 108 bytes of a unix address.
	dir, err := os.MkdirTemp("", "ebt-eng2-")
	if err != nil {
		t.Fatal(err)
	}
	e := &Engine2{Context: "ebt-eng2-" + id, Host: "unix://" + filepath.Join(dir, "docker.sock"), dir: dir, netns: "ebt-eng2-" + id}
	t.Cleanup(func() { e.stop(t) })
	t0 := time.Now()
	e.mustRun(t, "ip", "netns", "add", e.netns)
	e.mustRun(t, "ip", "netns", "exec", e.netns, "ip", "link", "set", "lo", "up")
	// An empty config file: the machine's /etc/docker/daemon.json names the first engine's
	// data-root, and dockerd refuses a flag that the file sets too.
	if err := os.WriteFile(filepath.Join(dir, "daemon.json"), []byte("{}"), 0o600); err != nil {
		t.Fatal(err)
	}
	e.start(t, strings.TrimSpace(driver), id)
	e.wait(t)
	e.mustRun(t, "docker", "context", "create", e.Context, "--description", "echo-backup e2e second engine", "--docker", "host="+e.Host)
	t.Logf("second engine %s (storage %s) up in %s", e.Context, strings.TrimSpace(driver), time.Since(t0).Round(time.Millisecond))
	return e
}

// start runs dockerd inside the namespace with nsenter: `ip netns exec` remounts /sys, and
// dockerd then stops with "Devices cgroup isn't mounted".
func (e *Engine2) start(t *testing.T, driver, id string) {
	t.Helper()
	log, err := os.Create(filepath.Join(e.dir, "dockerd.log"))
	if err != nil {
		t.Fatal(err)
	}
	defer log.Close()
	e.cmd = exec.Command("nsenter", "--net=/var/run/netns/"+e.netns, "dockerd",
		"--config-file", filepath.Join(e.dir, "daemon.json"),
		"-H", e.Host,
		"--data-root", filepath.Join(e.dir, "data"),
		"--exec-root", filepath.Join(e.dir, "exec"),
		"--pidfile", filepath.Join(e.dir, "docker.pid"),
		"--containerd-namespace", "ebt-eng2-"+id,
		"--containerd-plugins-namespace", "ebt-eng2-plugins-"+id,
		"--storage-driver", driver)
	e.cmd.Stdout, e.cmd.Stderr = log, log
	if err := e.cmd.Start(); err != nil {
		t.Fatalf("starting the second dockerd: %v", err)
	}
	e.exited = make(chan error, 1)
	go func() { e.exited <- e.cmd.Wait() }()
}

func (e *Engine2) wait(t *testing.T) {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for time.Now().Before(deadline) {
		select {
		case err := <-e.exited:
			e.exited <- err
			t.Fatalf("the second dockerd exited: %v\n%s", err, e.logTail())
		default:
		}
		if out, err := output(context.Background(), "", nil, "docker", "-H", e.Host, "version", "--format", "{{.Server.Version}}"); err == nil && strings.TrimSpace(out) != "" {
			return
		}
		time.Sleep(200 * time.Millisecond)
	}
	t.Fatalf("the second dockerd did not answer within a minute:\n%s", e.logTail())
}

// LoadImage copies an image from the first engine: `docker save IMAGE | docker --context X load`.
func (e *Engine2) LoadImage(t *testing.T, image string) {
	t.Helper()
	t0 := time.Now()
	script := `set -o pipefail; docker save "$1" | docker --context "$2" load -q`
	if out, err := combined(context.Background(), "", nil, "bash", "-c", script, "bash", image, e.Context); err != nil {
		t.Fatalf("copying image %s to the second engine: %v\n%s", image, err, out)
	}
	t.Logf("image %s copied to %s in %s", image, e.Context, time.Since(t0).Round(time.Millisecond))
}

// Stack is src's project as seen on this engine: the same folder and compose files, its
// commands sent to this engine (DOCKER_CONTEXT). Its state goes with the engine.
func (e *Engine2) Stack(src *Stack) *Stack {
	return &Stack{Fixture: src.Fixture, t: src.t, Dir: src.Dir, Name: src.Name, MusicDir: src.MusicDir,
		Env: append(slices.Clone(src.Env), "DOCKER_CONTEXT="+e.Context), seeded: true}
}

// Docker runs the docker CLI against this engine.
func (e *Engine2) Docker(args ...string) (string, error) {
	return output(context.Background(), "", nil, "docker", append([]string{"--context", e.Context}, args...)...)
}

func (e *Engine2) mustRun(t *testing.T, name string, args ...string) {
	t.Helper()
	if out, err := combined(context.Background(), "", nil, name, args...); err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
}

// stop removes everything StartEngine2 made, each step whatever the others did.
func (e *Engine2) stop(t *testing.T) {
	t0 := time.Now()
	run := func(name string, args ...string) {
		if out, err := combined(context.Background(), "", nil, name, args...); err != nil {
			t.Logf("second engine cleanup: %s %s: %v: %s", name, strings.Join(args, " "), err, tail(out, 500))
		}
	}
	run("docker", "context", "rm", "-f", e.Context)
	if e.cmd != nil && e.cmd.Process != nil {
		// Containers first, quickly: dockerd would otherwise wait out each one's stop timeout.
		if ids, err := output(context.Background(), "", nil, "docker", "-H", e.Host, "ps", "-aq"); err == nil && len(nonEmptyLines(ids)) > 0 {
			run("docker", append([]string{"-H", e.Host, "rm", "-f", "-v"}, nonEmptyLines(ids)...)...)
		}
		_ = e.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-e.exited:
		case <-time.After(time.Minute):
			t.Logf("second engine cleanup: dockerd ignored SIGTERM for a minute; killing it")
			_ = e.cmd.Process.Kill()
			<-e.exited
		}
	}
	e.unmountAll(t)
	if _, err := os.Stat("/var/run/netns/" + e.netns); err == nil {
		run("ip", "netns", "del", e.netns)
	}
	if err := os.RemoveAll(e.dir); err != nil {
		t.Logf("second engine cleanup: removing %s: %v", e.dir, err)
	}
	t.Logf("second engine %s stopped and removed in %s", e.Context, time.Since(t0).Round(time.Millisecond))
}

// unmountAll unmounts whatever a killed dockerd left mounted under its folders, deepest first.
func (e *Engine2) unmountAll(t *testing.T) {
	b, err := os.ReadFile("/proc/self/mounts")
	if err != nil {
		return
	}
	var points []string
	for _, line := range strings.Split(string(b), "\n") {
		if f := strings.Fields(line); len(f) > 1 && strings.HasPrefix(f[1], e.dir+"/") {
			points = append(points, f[1])
		}
	}
	slices.SortFunc(points, func(a, b string) int { return len(b) - len(a) })
	for _, p := range points {
		if err := syscall.Unmount(p, syscall.MNT_DETACH); err != nil {
			t.Logf("second engine cleanup: unmounting %s: %v", p, err)
		}
	}
}

func (e *Engine2) logTail() string {
	b, _ := os.ReadFile(filepath.Join(e.dir, "dockerd.log"))
	return tail(string(b), 3000)
}

// String names the engine in messages.
func (e *Engine2) String() string { return fmt.Sprintf("%s (%s)", e.Context, e.Host) }
