//go:build e2e

package e2e

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"
)

const composeModule = "github.com/docker/compose/v5"

// Set once by TestMain, read by every test.
var (
	moduleRoot   string // folder of go.mod
	dockerConfig string // temporary DOCKER_CONFIG holding cli-plugins/
	pgImage      string // ECHOBACKUP_PG_IMAGE: postgres + redis-server + sh
)

func TestMain(m *testing.M) {
	if err := setup(); err != nil {
		fmt.Fprintf(os.Stderr, "\ne2e: SETUP FAILED: %v\n\n", err)
		if dockerConfig != "" {
			os.RemoveAll(dockerConfig)
		}
		os.Exit(1)
	}
	code := m.Run()
	if leaks := leftovers(); leaks != "" {
		fmt.Fprintf(os.Stderr, "\ne2e: FAIL: test stacks left things on the engine:\n%s\n", leaks)
		if code == 0 {
			code = 1
		}
	}
	os.RemoveAll(dockerConfig)
	os.Exit(code)
}

func setup() error {
	start := time.Now()
	if _, err := exec.LookPath("docker"); err != nil {
		return fmt.Errorf("no docker CLI in PATH: the e2e suite needs the docker CLI and a Docker engine")
	}
	// The engine must answer; a missing engine fails the suite, it never skips it.
	ver, err := output(context.Background(), "", nil, "docker", "version", "--format", "{{.Server.Version}}")
	if err != nil || strings.TrimSpace(ver) == "" {
		return fmt.Errorf("no Docker engine answers `docker version` (%v); start one (scripts/engine.sh does) and re-run", err)
	}
	logf("Docker engine %s", strings.TrimSpace(ver))

	gomod, err := output(context.Background(), "", nil, "go", "env", "GOMOD")
	if err != nil || strings.TrimSpace(gomod) == "" || strings.TrimSpace(gomod) == os.DevNull {
		return fmt.Errorf("cannot find the module root with `go env GOMOD`: %v", err)
	}
	moduleRoot = filepath.Dir(strings.TrimSpace(gomod))

	// The engine is reached through a docker context in the suite's fresh DOCKER_CONFIG, never
	// through DOCKER_HOST: DOCKER_HOST outranks DOCKER_CONTEXT, so with it set the tests that
	// send a command to a second engine (DOCKER_CONTEXT=…) would reach this one instead.
	host, err := engineHost()
	if err != nil {
		return err
	}
	// The user's compose settings must not leak into the stacks.
	for _, kv := range os.Environ() {
		if k, _, _ := strings.Cut(kv, "="); strings.HasPrefix(k, "COMPOSE_") {
			os.Unsetenv(k)
		}
	}
	os.Setenv("COMPOSE_ANSI", "never")

	dockerConfig, err = os.MkdirTemp("", "echobackup-e2e-docker-config-")
	if err != nil {
		return err
	}
	os.Setenv("DOCKER_CONFIG", dockerConfig)
	if host != "" {
		if out, err := combined(context.Background(), "", nil, "docker", "context", "create", suiteContext,
			"--description", "the engine the e2e suite runs on", "--docker", host); err != nil {
			return fmt.Errorf("creating docker context %s for %s: %v\n%s", suiteContext, host, err, out)
		}
		os.Unsetenv("DOCKER_HOST")
		os.Unsetenv("DOCKER_TLS_VERIFY")
		os.Unsetenv("DOCKER_CERT_PATH")
		os.Setenv("DOCKER_CONTEXT", suiteContext)
		suiteHost = strings.TrimPrefix(strings.Split(host, ",")[0], "host=")
		logf("engine endpoint %s (docker context %s)", host, suiteContext)
	}
	if err := logEngine(); err != nil {
		return err
	}
	plugins := filepath.Join(dockerConfig, "cli-plugins")
	if err := os.MkdirAll(plugins, 0o755); err != nil {
		return err
	}

	if err := installCompose(filepath.Join(plugins, "docker-compose")); err != nil {
		return err
	}
	t0 := time.Now()
	if out, err := combined(context.Background(), moduleRoot, nil, "go", "build", "-o", filepath.Join(plugins, "docker-echobackup"), "."); err != nil {
		return fmt.Errorf("building docker-echobackup: %v\n%s", err, out)
	}
	logf("built docker-echobackup in %s", time.Since(t0).Round(time.Millisecond))

	cv, err := combined(context.Background(), "", nil, "docker", "compose", "version")
	if err != nil {
		return fmt.Errorf("`docker compose version` with DOCKER_CONFIG=%s failed: %v\n%s", dockerConfig, err, cv)
	}
	logf("%s", strings.TrimSpace(cv))

	if pgImage, err = resolvePGImage(); err != nil {
		return err
	}
	os.Setenv("ECHOBACKUP_PG_IMAGE", pgImage)
	logf("PostgreSQL image %s; setup took %s", pgImage, time.Since(start).Round(time.Millisecond))
	return nil
}

// suiteContext names the docker context the suite reaches its engine by, when the engine is
// not the CLI's default one.
const suiteContext = "ebt-engine"

// suiteHost is that context's endpoint, for programs that know no docker contexts (compose
// v1); "" for the CLI's default engine.
var suiteHost string

// engineHost: the endpoint of the engine that DOCKER_HOST or the chosen docker context names,
// as `docker context create --docker` takes it; "" for the CLI's default engine.
func engineHost() (string, error) {
	ctx := context.Background()
	if h := os.Getenv("DOCKER_HOST"); h != "" {
		ep := "host=" + h
		if dir := os.Getenv("DOCKER_CERT_PATH"); dir != "" && os.Getenv("DOCKER_TLS_VERIFY") != "" {
			ep += ",ca=" + filepath.Join(dir, "ca.pem") + ",cert=" + filepath.Join(dir, "cert.pem") + ",key=" + filepath.Join(dir, "key.pem")
		}
		return ep, nil
	}
	name := os.Getenv("DOCKER_CONTEXT")
	if name == "" {
		out, err := output(ctx, "", nil, "docker", "context", "show")
		if err != nil {
			return "", nil
		}
		name = strings.TrimSpace(out)
	}
	if name == "" || name == "default" {
		return "", nil
	}
	host, err := output(ctx, "", nil, "docker", "context", "inspect", "--format", "{{.Endpoints.docker.Host}}", name)
	if err != nil || strings.TrimSpace(host) == "" {
		return "", fmt.Errorf("cannot read the endpoint of docker context %q: %v", name, err)
	}
	return "host=" + strings.TrimSpace(host), nil
}

// logEngine names the engine and the CLI the suite runs with: scripts/test.sh runs the suite
// on more than one, and a failure must say which.
func logEngine() error {
	ctx := context.Background()
	v, err := output(ctx, "", nil, "docker", "version", "--format",
		"engine {{.Server.Version}} (API {{.Server.APIVersion}}, minimum {{.Server.MinAPIVersion}}), docker CLI {{.Client.Version}} (API {{.Client.APIVersion}})")
	if err != nil {
		return fmt.Errorf("reading the engine's version: %v", err)
	}
	store, err := output(ctx, "", nil, "docker", "info", "--format", "storage {{.Driver}}{{range .DriverStatus}}{{if eq (index . 0) \"driver-type\"}} ({{index . 1}}){{end}}{{end}}")
	if err != nil {
		return fmt.Errorf("reading the engine's storage: %v", err)
	}
	logf("%s, %s", strings.TrimSpace(v), strings.TrimSpace(store))
	return nil
}

// installCompose puts the compose CLI plugin at dst. It is built from the compose module
// that go.mod pins (a `tool` there, so go.sum carries its dependencies), once per version:
// the binary is cached outside the checkout and reused by later runs.
func installCompose(dst string) error {
	ctx := context.Background()
	v, err := output(ctx, moduleRoot, nil, "go", "list", "-m", "-f", "{{.Version}}", composeModule)
	if err != nil {
		return fmt.Errorf("`go list -m %s`: %v (is it in go.mod?)", composeModule, err)
	}
	version := strings.TrimSpace(v)
	dir, err := composeCacheDir()
	if err != nil {
		return err
	}
	cached := filepath.Join(dir, fmt.Sprintf("docker-compose-%s-%s-%s", version, runtime.GOOS, runtime.GOARCH))
	if _, err := os.Stat(cached); err != nil {
		t0 := time.Now()
		logf("building the compose CLI %s into %s (once; a few minutes when Go's build cache is cold)", version, cached)
		tmp := fmt.Sprintf("%s.%d.partial", cached, os.Getpid())
		defer os.Remove(tmp)
		out, err := combined(ctx, moduleRoot, nil, "go", "build",
			"-ldflags", "-X "+composeModule+"/internal.Version="+version,
			"-o", tmp, composeModule+"/cmd")
		if err != nil {
			return fmt.Errorf("building the compose CLI: %v\n%s", err, out)
		}
		if err := os.Rename(tmp, cached); err != nil {
			return err
		}
		logf("built the compose CLI in %s", time.Since(t0).Round(time.Millisecond))
	} else {
		logf("compose CLI %s from cache %s", version, cached)
	}
	return copyFile(cached, dst, 0o755)
}

// composeCacheDir: $ECHOBACKUP_E2E_CACHE, else the user cache folder, else next to GOCACHE.
func composeCacheDir() (string, error) {
	dir := os.Getenv("ECHOBACKUP_E2E_CACHE")
	if dir == "" {
		if d, err := os.UserCacheDir(); err == nil {
			dir = filepath.Join(d, "echobackup-e2e")
		}
	}
	if dir == "" {
		gocache, err := output(context.Background(), "", nil, "go", "env", "GOCACHE")
		if err != nil || strings.TrimSpace(gocache) == "" || strings.TrimSpace(gocache) == "off" {
			return "", fmt.Errorf("no cache folder for the compose CLI: set ECHOBACKUP_E2E_CACHE")
		}
		dir = filepath.Join(filepath.Dir(strings.TrimSpace(gocache)), "echobackup-e2e")
	}
	return dir, os.MkdirAll(dir, 0o755)
}

// resolvePGImage: $ECHOBACKUP_PG_IMAGE, else whatever scripts/pg-image.sh prints (it builds
// the image on first use). The image must exist on the engine either way.
func resolvePGImage() (string, error) {
	img := os.Getenv("ECHOBACKUP_PG_IMAGE")
	if img == "" {
		script := filepath.Join(moduleRoot, "scripts", "pg-image.sh")
		logf("ECHOBACKUP_PG_IMAGE is not set: running %s", script)
		cmd := exec.Command(script)
		cmd.Dir = moduleRoot
		cmd.Stderr = os.Stderr
		out, err := cmd.Output()
		if err != nil {
			return "", fmt.Errorf("%s failed: %v", script, err)
		}
		img = strings.TrimSpace(string(out))
		if i := strings.LastIndexByte(img, '\n'); i >= 0 {
			img = strings.TrimSpace(img[i+1:])
		}
	}
	if img == "" {
		return "", errors.New("no PostgreSQL test image: ECHOBACKUP_PG_IMAGE is empty")
	}
	if out, err := combined(context.Background(), "", nil, "docker", "image", "inspect", "--format", "{{.Id}}", img); err != nil {
		return "", fmt.Errorf("PostgreSQL test image %q is not on the engine: %v\n%s", img, err, out)
	}
	return img, nil
}

// leftovers lists containers, volumes and networks of any stack this run created that are
// still on the engine.
func leftovers() string {
	var b strings.Builder
	for _, name := range createdProjects() {
		for _, l := range []string{"com.docker.compose.project=" + name, "com.echobackup.project=" + name} {
			for _, kind := range [][]string{
				{"ps", "-a", "--format", "container {{.Names}} ({{.ID}})"},
				{"volume", "ls", "--format", "volume {{.Name}}"},
				{"network", "ls", "--format", "network {{.Name}}"},
			} {
				args := append(append([]string{}, kind...), "--filter", "label="+l)
				out, err := output(context.Background(), "", nil, "docker", args...)
				if err != nil {
					fmt.Fprintf(&b, "  docker %s: %v\n", strings.Join(args, " "), err)
				}
				for _, line := range nonEmptyLines(out) {
					fmt.Fprintf(&b, "  %s [%s]\n", line, l)
				}
			}
		}
	}
	return b.String()
}

func logf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "e2e: "+format+"\n", args...)
}

// output runs a command and returns its stdout; stderr goes into the error.
func output(ctx context.Context, dir string, env []string, name string, args ...string) (string, error) {
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Dir = dir
	if env != nil {
		cmd.Env = env
	}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return string(out), fmt.Errorf("%s %s: %w: %s", name, strings.Join(args, " "), err, strings.TrimSpace(stderr.String()))
	}
	return string(out), nil
}

// combined runs a command and returns stdout and stderr together.
func combined(ctx context.Context, dir string, env []string, name string, args ...string) (string, error) {
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Dir = dir
	if env != nil {
		cmd.Env = env
	}
	out, err := cmd.CombinedOutput()
	return string(out), err
}

func copyFile(src, dst string, mode os.FileMode) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, mode)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}

func nonEmptyLines(s string) []string {
	var lines []string
	for _, l := range strings.Split(s, "\n") {
		if l = strings.TrimSpace(l); l != "" {
			lines = append(lines, l)
		}
	}
	return lines
}
