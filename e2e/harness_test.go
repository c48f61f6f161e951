//go:build e2e

package e2e

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// Labels. Compose puts LabelComposeProject on what it creates; echo-backup puts
// LabelEchoProject on its own helper containers; the harness puts LabelTest on anything it
// creates outside compose (and LabelEchoProject, so a stack's cleanup finds it).
const (
	LabelComposeProject = "com.docker.compose.project"
	LabelEchoProject    = "com.echobackup.project"
	LabelTest           = "com.echobackup.test"
)

// AppUID and AppGID own Echo's data, as in Echo's image (user 1001).
const AppUID, AppGID = 1001, 1001

// CommandTimeout bounds every docker command a test runs.
var CommandTimeout = 10 * time.Minute

// SeedRowCounts is what testdata/schema.sql leaves in the database.
var SeedRowCounts = map[string]int{
	"users":           50,
	"artists":         200,
	"albums":          600,
	"tracks":          3000,
	"playlists":       118,  // 120 inserted, 2 deleted
	"playlist_tracks": 2360, // 20 per playlist, cascaded with the 2 deleted
	"ratings":         1500,
	"play_history":    20000,
}

// Fixture describes one folder of testdata/.
type Fixture struct {
	Name       string
	DBService  string // PostgreSQL service
	DBUser     string
	DBPassword string
	DBName     string
	AppService string // Echo (the placeholder), runs as AppUID
	// DataVolume is the compose volume key holding /app/data; "" means the bind ./data.
	DataVolume string
	// ComposeFiles are passed with -f on every compose command; nil means compose's own
	// discovery (compose.yaml in the folder).
	ComposeFiles []string
	// ProjectFlag: the harness passes -p NAME. Otherwise it exports COMPOSE_PROJECT_NAME.
	ProjectFlag bool
	// PinnedNames: some service sets container_name, so two stacks of this fixture cannot
	// run at once; NewStack serialises them.
	PinnedNames bool
}

// Fixtures by folder name under testdata/.
var Fixtures = map[string]Fixture{
	// Echo's documented layout: ./data bind, container_name echo-postgres.
	"seed": {
		Name: "seed", DBService: "postgres", DBUser: "echo", DBPassword: "echo-db-secret", DBName: "echo",
		AppService: "echo", PinnedNames: true,
	},
	// db service "db", credentials in .env, data in the named volume echo_data, two compose
	// files, a profile-only service.
	"custom": {
		Name: "custom", DBService: "db", DBUser: "music", DBPassword: "library-pass-1234", DBName: "library",
		AppService: "echo", DataVolume: "echo_data",
		ComposeFiles: []string{"compose.yaml", "compose.override.yaml"}, ProjectFlag: true,
	},
	// Every service from the database's image, told apart by entrypoint and command overrides,
	// and a pg_dump sidecar: found without --db-service.
	"sidecar": {
		Name: "sidecar", DBService: "postgres", DBUser: "echo", DBPassword: "sidecar-db-secret", DBName: "echo",
		AppService: "echo",
	},
}

var (
	pinnedMu   sync.Mutex
	pinnedLock = map[string]*sync.Mutex{}

	projectsMu sync.Mutex
	projects   []string
)

func fixtureLock(name string) *sync.Mutex {
	pinnedMu.Lock()
	defer pinnedMu.Unlock()
	if pinnedLock[name] == nil {
		pinnedLock[name] = &sync.Mutex{}
	}
	return pinnedLock[name]
}

// lockAcrossRuns takes an flock that every test process on this machine shares for fixture;
// the kernel drops it if the process dies.
func lockAcrossRuns(t testing.TB, fixture string) func() {
	t.Helper()
	f, err := os.OpenFile(filepath.Join(os.TempDir(), "echobackup-e2e-"+fixture+".lock"), os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		t.Fatalf("opening the fixture lock: %v", err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX); err != nil {
		f.Close()
		t.Fatalf("locking fixture %s: %v", fixture, err)
	}
	return func() { f.Close() }
}

func createdProjects() []string {
	projectsMu.Lock()
	defer projectsMu.Unlock()
	return append([]string(nil), projects...)
}

// Stack is one compose project made from a fixture, in its own folder, under its own name.
type Stack struct {
	Fixture
	t        testing.TB
	Dir      string   // the project folder: a copy of testdata/<fixture>/
	Name     string   // the compose project name: ebt-<fixture>-<random>
	MusicDir string   // bound read-only at /mnt in the app (seed), outside Dir
	Env      []string // added to the environment of every command

	// As, when set, runs every command of the stack as that user instead of the test's own.
	As *Account

	seeded    bool
	cleanOnce sync.Once
}

// NewStack copies testdata/<fixture>/ into a fresh temporary folder and names the project
// ebt-<fixture>-<random>. Nothing runs yet (see Up). Everything the stack leaves on the
// engine is removed when the test ends, failed or not.
func NewStack(t testing.TB, fixture string) *Stack {
	t.Helper()
	fx, ok := Fixtures[fixture]
	if !ok {
		t.Fatalf("unknown fixture %q", fixture)
	}
	root := t.TempDir()
	name := "ebt-" + fixture + "-" + randomHex(4)
	s := &Stack{
		Fixture: fx,
		t:       t,
		// The folder carries the project name too: compose run without the stack's
		// environment still lands on this project, never on a real "echo" one.
		Dir:      filepath.Join(root, name),
		Name:     name,
		MusicDir: filepath.Join(root, "music"),
	}
	if err := copyTree(filepath.Join(moduleRoot, "e2e", "testdata", fixture), s.Dir); err != nil {
		t.Fatalf("copying fixture %s: %v", fixture, err)
	}
	if err := writeMusic(s.MusicDir); err != nil {
		t.Fatalf("writing the music library: %v", err)
	}
	s.Env = append(s.Env, "ECHO_MUSIC_DIR="+s.MusicDir)
	if !fx.ProjectFlag {
		s.Env = append(s.Env, "COMPOSE_PROJECT_NAME="+s.Name)
	}
	if fx.PinnedNames {
		mu := fixtureLock(fixture)
		mu.Lock()
		// Another test run (a second checkout) may hold the same container names.
		unlock := lockAcrossRuns(t, fixture)
		t.Cleanup(func() { unlock(); mu.Unlock() }) // runs after the stack's cleanup below (LIFO)
	}
	projectsMu.Lock()
	projects = append(projects, s.Name)
	projectsMu.Unlock()
	if os.Geteuid() != 0 {
		// Containers write into binds as root or 1001; hand the files back before
		// t.TempDir's removal runs (cleanups run last-in first-out).
		t.Cleanup(func() { s.chownBack(root) })
	}
	t.Cleanup(s.Cleanup)
	t.Logf("stack %s: fixture %s in %s", s.Name, fixture, s.Dir)
	return s
}

// ProjectArgs are the compose project flags this stack needs on the command line (-p, -f);
// empty for fixtures that go by COMPOSE_PROJECT_NAME and the folder's compose.yaml.
func (s *Stack) ProjectArgs() []string {
	var args []string
	if s.ProjectFlag {
		args = append(args, "-p", s.Name)
	}
	for _, f := range s.ComposeFiles {
		args = append(args, "-f", f)
	}
	return args
}

// Result of one command.
type Result struct {
	Stdout, Stderr string
	Code           int // -1 when the command could not run or timed out
}

// RunOpts for Stack.Run.
type RunOpts struct {
	Dir   string    // default: the stack's folder
	Stdin io.Reader // default: none (like CI)
	Env   []string  // added after the stack's Env
	Quiet bool      // don't log the command (the caller reports failures)
}

// Run runs any program with the stack's environment (temporary DOCKER_CONFIG, project name,
// image) in the stack's folder.
func (s *Stack) Run(o RunOpts, name string, args ...string) Result {
	s.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), CommandTimeout)
	defer cancel()
	if s.As != nil {
		// exec looks the program up in the test's PATH, not in the user's.
		if p := filepath.Join(s.As.Bin, name); !strings.Contains(name, "/") && fileExists(p) {
			name = p
		}
	}
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Dir = o.Dir
	if cmd.Dir == "" {
		cmd.Dir = s.Dir
	}
	cmd.Env = append(append(os.Environ(), s.Env...), o.Env...)
	if s.As != nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{
			Uid: uint32(s.As.UID), Gid: uint32(s.As.GID), Groups: s.As.Groups}}
		cmd.Env = append(cmd.Env, "HOME="+s.As.Home, "DOCKER_CONFIG="+s.As.DockerConfig, "USER=", "LOGNAME=",
			"PATH="+s.As.Bin+string(os.PathListSeparator)+os.Getenv("PATH"))
	}
	cmd.Stdin = o.Stdin
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	t0 := time.Now()
	err := cmd.Run()
	r := Result{Stdout: stdout.String(), Stderr: stderr.String()}
	var exitErr *exec.ExitError
	switch {
	case err == nil:
	case errors.As(err, &exitErr) && ctx.Err() == nil:
		r.Code = exitErr.ExitCode()
	default:
		r.Code = -1
		r.Stderr += fmt.Sprintf("\n[harness: %v]", err)
	}
	if !o.Quiet {
		s.t.Logf("$ %s %s  -> exit %d (%s)", name, strings.Join(args, " "), r.Code, time.Since(t0).Round(time.Millisecond))
		if r.Code != 0 {
			s.t.Logf("  stderr: %s", tail(r.Stderr, 3000))
		}
	}
	return r
}

// Docker runs the real docker CLI in the stack's folder and returns stdout, stderr and the
// exit code.
func (s *Stack) Docker(args ...string) (stdout, stderr string, code int) {
	s.t.Helper()
	r := s.Run(RunOpts{}, "docker", args...)
	return r.Stdout, r.Stderr, r.Code
}

// MustDocker is Docker that fails the test on a non-zero exit.
func (s *Stack) MustDocker(args ...string) string {
	s.t.Helper()
	out, errOut, code := s.Docker(args...)
	if code != 0 {
		s.t.Fatalf("docker %s: exit %d\n%s", strings.Join(args, " "), code, errOut)
	}
	return out
}

// EchoBackup runs `docker echobackup ARGS` in the stack's folder. Project flags are not
// added: pass s.ProjectArgs() where the fixture needs them.
func (s *Stack) EchoBackup(args ...string) (stdout, stderr string, code int) {
	s.t.Helper()
	return s.Docker(append([]string{"echobackup"}, args...)...)
}

// Compose runs `docker compose <project flags> ARGS`.
func (s *Stack) Compose(args ...string) (stdout, stderr string, code int) {
	s.t.Helper()
	return s.Docker(s.composeArgs(args...)...)
}

// MustCompose is Compose that fails the test on a non-zero exit.
func (s *Stack) MustCompose(args ...string) string {
	s.t.Helper()
	return s.MustDocker(s.composeArgs(args...)...)
}

func (s *Stack) composeArgs(args ...string) []string {
	return append(append([]string{"compose"}, s.ProjectArgs()...), args...)
}

// Up starts the stack (`docker compose up -d --wait`) and waits until PostgreSQL accepts
// TCP connections. On the stack's first Up it also seeds it like a running Echo: the app's
// files (SeedFiles, into ./data before the start or into the data volume after it) and the
// database (testdata/schema.sql). Later calls only start and wait.
func (s *Stack) Up() {
	s.t.Helper()
	if s.seeded {
		s.start()
		return
	}
	if s.DataVolume == "" {
		SeedFiles(s.t, s.DataDir())
	}
	s.start()
	if s.DataVolume != "" {
		src := filepath.Join(s.t.TempDir(), "data")
		SeedFiles(s.t, src)
		// Plain cp keeps the files' owners and modes (--archive would instead chown all to
		// the container's user, and fails on a numeric "1001:1001"). The volume's root stays
		// root's: give it to the app, as Echo's image (/app/data owned by 1001) would.
		s.MustCompose("cp", src+"/.", s.AppService+":/app/data")
		s.MustCompose("exec", "-T", "-u", "0", s.AppService, "chown", fmt.Sprintf("%d:%d", AppUID, AppGID), "/app/data")
	}
	s.PsqlFile(filepath.Join(moduleRoot, "e2e", "testdata", "schema.sql"))
	s.seeded = true
	s.t.Logf("stack %s: up and seeded", s.Name)
}

// UpBare starts the stack without seeding anything (an empty database, no app files);
// later Up calls won't seed either.
func (s *Stack) UpBare() {
	s.t.Helper()
	s.seeded = true
	s.start()
}

func (s *Stack) start() {
	s.t.Helper()
	s.MustCompose("up", "-d", "--wait", "--wait-timeout", "180")
	s.WaitDB(3 * time.Minute)
}

// WaitDB waits until PostgreSQL answers over TCP inside its container. During the image's
// first-start initialisation only a socket-only server runs, so pg_isready on the socket
// would answer too early; a TCP query does not.
func (s *Stack) WaitDB(timeout time.Duration) {
	s.t.Helper()
	deadline := time.Now().Add(timeout)
	var last Result
	for time.Now().Before(deadline) {
		last = s.Run(RunOpts{Quiet: true}, "docker", s.composeArgs("exec", "-T", "-e", "PGPASSWORD="+s.DBPassword,
			s.DBService, "psql", "-X", "-h", "127.0.0.1", "-U", s.DBUser, "-d", s.DBName, "-At", "-c", "select 1")...)
		if last.Code == 0 && strings.TrimSpace(last.Stdout) == "1" {
			return
		}
		time.Sleep(500 * time.Millisecond)
	}
	s.t.Fatalf("PostgreSQL of %s did not accept TCP connections within %s: exit %d\n%s%s",
		s.Name, timeout, last.Code, last.Stdout, last.Stderr)
}

// Psql runs SQL (statements and psql meta-commands) in the database container as the
// fixture's user, unaligned and tuples-only (-At, fields split by '|'), stopping at the
// first error, and returns the output. It fails the test on error.
func (s *Stack) Psql(sql string) string {
	s.t.Helper()
	r := s.PsqlResult(sql)
	if r.Code != 0 {
		s.t.Fatalf("psql in %s/%s failed (exit %d):\n%s\nSQL: %s", s.Name, s.DBService, r.Code, r.Stderr, tail(sql, 500))
	}
	return strings.TrimRight(r.Stdout, "\n")
}

// PsqlResult is Psql without failing the test.
func (s *Stack) PsqlResult(sql string) Result {
	s.t.Helper()
	return s.Run(RunOpts{Stdin: strings.NewReader(sql), Quiet: true}, "docker", s.composeArgs("exec", "-T",
		s.DBService, "psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", "-U", s.DBUser, "-d", s.DBName,
		"-At", "-F", "|", "-f", "-")...)
}

// PsqlFile runs a SQL file through Psql.
func (s *Stack) PsqlFile(path string) string {
	s.t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		s.t.Fatal(err)
	}
	return s.Psql(string(b))
}

// RowCounts counts the rows of the given tables.
func (s *Stack) RowCounts(tables ...string) map[string]int {
	s.t.Helper()
	var q []string
	for _, t := range tables {
		q = append(q, fmt.Sprintf("select '%s', count(*) from %s", t, quoteIdent(t)))
	}
	counts := map[string]int{}
	for _, line := range nonEmptyLines(s.Psql(strings.Join(q, " union all ") + ";")) {
		name, n, _ := strings.Cut(line, "|")
		var v int
		fmt.Sscan(n, &v)
		counts[name] = v
	}
	return counts
}

// DataDir is the host folder bound at /app/data (fixtures with a ./data bind).
func (s *Stack) DataDir() string { return filepath.Join(s.Dir, "data") }

// Volume is the engine's name of a compose volume key of this stack.
func (s *Stack) Volume(key string) string { return s.Name + "_" + key }

// ContainerID of a service's (first) container, "" when there is none.
func (s *Stack) ContainerID(service string) string {
	s.t.Helper()
	out, _, _ := s.Compose("ps", "-a", "-q", service)
	lines := nonEmptyLines(out)
	if len(lines) == 0 {
		return ""
	}
	return lines[0]
}

// Down stops and removes the stack's containers and networks, keeping its volumes.
func (s *Stack) Down() {
	s.t.Helper()
	s.MustCompose("down", "--timeout", "1")
}

// HarnessLabels are the labels for anything the harness creates outside compose.
func (s *Stack) HarnessLabels() []string {
	return []string{"--label", LabelTest + "=1", "--label", LabelEchoProject + "=" + s.Name}
}

// Cleanup removes everything of the stack from the engine: `compose down -v`, then any
// container, volume or network labelled with the project (compose's label or echo-backup's),
// then volumes named <project>_*. Nothing else. It runs at the end of the test (failed or
// not) and may be called earlier; it only runs once.
func (s *Stack) Cleanup() {
	s.cleanOnce.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
		defer cancel()
		dir := s.Dir
		if _, err := os.Stat(dir); err != nil {
			dir = "" // a test removed it: compose finds the project by its labels
		}
		run := func(args ...string) string {
			cmd := exec.CommandContext(ctx, "docker", args...)
			cmd.Dir = dir
			cmd.Env = append(os.Environ(), s.Env...)
			var stderr bytes.Buffer
			cmd.Stderr = &stderr
			out, err := cmd.Output()
			if err != nil {
				s.t.Logf("cleanup %s: docker %s: %v: %s", s.Name, strings.Join(args, " "), err, tail(stderr.String(), 1000))
			}
			return string(out)
		}
		down := append(append([]string{"compose"}, s.ProjectArgs()...), "--profile", "*", "down", "-v", "--remove-orphans", "--timeout", "1")
		if dir == "" {
			down = []string{"compose", "-p", s.Name, "down", "-v", "--remove-orphans", "--timeout", "1"}
		}
		run(down...)

		filters := []string{LabelComposeProject + "=" + s.Name, LabelEchoProject + "=" + s.Name}
		var containers, volumes, networks []string
		for _, f := range filters {
			containers = append(containers, nonEmptyLines(run("ps", "-a", "-q", "--filter", "label="+f))...)
		}
		if containers = unique(containers); len(containers) > 0 {
			s.t.Logf("cleanup %s: removing leftover containers %v", s.Name, containers)
			run(append([]string{"rm", "-f", "-v"}, containers...)...)
		}
		for _, f := range filters {
			volumes = append(volumes, nonEmptyLines(run("volume", "ls", "-q", "--filter", "label="+f))...)
			networks = append(networks, nonEmptyLines(run("network", "ls", "-q", "--filter", "label="+f))...)
		}
		// The name filter matches substrings: keep only real prefixes.
		for _, v := range nonEmptyLines(run("volume", "ls", "-q", "--filter", "name="+s.Name+"_")) {
			if strings.HasPrefix(v, s.Name+"_") {
				volumes = append(volumes, v)
			}
		}
		if volumes = unique(volumes); len(volumes) > 0 {
			s.t.Logf("cleanup %s: removing leftover volumes %v", s.Name, volumes)
			run(append([]string{"volume", "rm", "-f"}, volumes...)...)
		}
		if networks = unique(networks); len(networks) > 0 {
			s.t.Logf("cleanup %s: removing leftover networks %v", s.Name, networks)
			run(append([]string{"network", "rm"}, networks...)...)
		}
	})
}

// chownBack gives a folder tree back to the (non-root) test user through a container.
func (s *Stack) chownBack(dir string) {
	r := s.Run(RunOpts{Quiet: true}, "docker", "run", "--rm", "--network", "none", "--label", LabelTest+"=1",
		"-v", dir+":/d", "--entrypoint", "chown", pgImage, "-R", "-h", fmt.Sprintf("%d:%d", os.Getuid(), os.Getgid()), "/d")
	if r.Code != 0 {
		s.t.Logf("could not hand %s back to uid %d: %s", dir, os.Getuid(), r.Stderr)
	}
}

// SeedFiles writes what a running Echo keeps in its data folder into dir, owned by
// AppUID:AppGID: setup.json, secrets.env (fake JWT secrets, mode 0600), covers/*.jpg and
// metadata/artists/*.jpg (random bytes; one large), uploads/ with a nested empty folder, a
// symlink, a 0640 file and a name with spaces and non-ASCII letters.
func SeedFiles(t testing.TB, dir string) {
	t.Helper()
	type file struct {
		path string
		size int // random bytes; 0: content below
		data string
		mode os.FileMode
	}
	files := []file{
		{path: "setup.json", mode: 0o644, data: `{
  "setupComplete": true,
  "serverName": "Echo (e2e)",
  "adminUser": "admin",
  "musicPaths": ["/mnt/music"],
  "version": "1.4.2"
}
`},
		{path: "secrets.env", mode: 0o600, data: fmt.Sprintf("JWT_SECRET=%s\nJWT_REFRESH_SECRET=%s\nSESSION_SECRET=%s\n",
			randomHex(32), randomHex(32), randomHex(16))},
		{path: "covers/large.jpg", size: 3 << 20, mode: 0o644},
		{path: "uploads/user-2/avatar.png", size: 20000, mode: 0o640},
		{path: "uploads/user-3/Mötley Crüe – live (2019).jpg", size: 12345, mode: 0o644},
		{path: "uploads/import/notes.txt", data: "imported from an older Echo\n", mode: 0o644},
	}
	for i := 0; i < 25; i++ {
		files = append(files, file{path: fmt.Sprintf("covers/%d.jpg", i), size: 1000 + i*997, mode: 0o644})
	}
	for i := 1; i <= 40; i++ {
		files = append(files, file{path: fmt.Sprintf("metadata/artists/%d.jpg", i), size: 500 + i*131, mode: 0o644})
	}
	for _, f := range files {
		p := filepath.Join(dir, filepath.FromSlash(f.path))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		data := []byte(f.data)
		if f.size > 0 {
			data = make([]byte, f.size)
			rand.Read(data)
		}
		if err := os.WriteFile(p, data, f.mode); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(p, f.mode); err != nil { // not subject to umask
			t.Fatal(err)
		}
	}
	for _, d := range []string{"uploads/empty/nested", "metadata/albums"} {
		if err := os.MkdirAll(filepath.Join(dir, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Symlink("../covers/1.jpg", filepath.Join(dir, "uploads", "latest-cover.jpg")); err != nil {
		t.Fatal(err)
	}
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err == nil && d.IsDir() {
			err = os.Chmod(p, 0o755)
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	chownTree(t, dir, AppUID, AppGID)
}

// chownTree chowns a host folder tree (not following symlinks): directly as root, else
// through a container.
func chownTree(t testing.TB, dir string, uid, gid int) {
	t.Helper()
	if os.Geteuid() == 0 {
		err := filepath.WalkDir(dir, func(p string, _ fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			return os.Lchown(p, uid, gid)
		})
		if err != nil {
			t.Fatalf("chown %s: %v", dir, err)
		}
		return
	}
	out, err := combined(context.Background(), "", nil, "docker", "run", "--rm", "--network", "none",
		"--label", LabelTest+"=1", "-v", dir+":/d", "--entrypoint", "chown", pgImage,
		"-R", "-h", fmt.Sprintf("%d:%d", uid, gid), "/d")
	if err != nil {
		t.Fatalf("chown %s through a container: %v\n%s", dir, err, out)
	}
}

// writeMusic fills a small fake music library (bound read-only; never part of a backup).
func writeMusic(dir string) error {
	for i := 1; i <= 3; i++ {
		p := filepath.Join(dir, "music", fmt.Sprint(i), fmt.Sprintf("%d.flac", i))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			return err
		}
		data := make([]byte, 4096)
		rand.Read(data)
		if err := os.WriteFile(p, data, 0o644); err != nil {
			return err
		}
	}
	return nil
}

// copyTree copies a fixture folder (regular files, folders, symlinks; dotfiles included).
func copyTree(src, dst string) error {
	return filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(src, p)
		if err != nil {
			return err
		}
		target := filepath.Join(dst, rel)
		info, err := d.Info()
		if err != nil {
			return err
		}
		switch {
		case d.IsDir():
			return os.MkdirAll(target, 0o755)
		case d.Type()&fs.ModeSymlink != 0:
			link, err := os.Readlink(p)
			if err != nil {
				return err
			}
			return os.Symlink(link, target)
		case d.Type().IsRegular():
			return copyFile(p, target, info.Mode().Perm())
		}
		return fmt.Errorf("%s: unsupported file type %s", p, d.Type())
	})
}

func randomHex(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return hex.EncodeToString(b)
}

func quoteIdent(s string) string { return `"` + strings.ReplaceAll(s, `"`, `""`) + `"` }

func unique(in []string) []string {
	seen := map[string]bool{}
	var out []string
	for _, s := range in {
		if !seen[s] {
			seen[s] = true
			out = append(out, s)
		}
	}
	sort.Strings(out)
	return out
}

func tail(s string, n int) string {
	s = strings.TrimSpace(s)
	if len(s) <= n {
		return s
	}
	return "..." + s[len(s)-n:]
}
