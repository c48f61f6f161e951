//go:build e2e

package e2e

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

const (
	labelSentinel = "com.echobackup.sentinel"
	labelVolumes  = "com.echobackup.volumes"
)

type sentinelJSON struct {
	ID      string    `json:"id"`
	Name    string    `json:"name"`
	Volumes []string  `json:"volumes"`
	Since   time.Time `json:"since"`
}

type protectResult struct {
	Project  string       `json:"project"`
	Sentinel sentinelJSON `json:"sentinel"`
	Changed  bool         `json:"changed"`
	Added    []string     `json:"added"`
}

func (s *Stack) protect(t *testing.T, extra ...string) protectResult {
	t.Helper()
	args := append(append(append([]string{}, s.ProjectArgs()...), extra...), "protect", "--format", "json")
	out, errOut, code := s.EchoBackup(args...)
	if code != 0 {
		t.Fatalf("protect: exit %d\n%s", code, errOut)
	}
	var res protectResult
	if err := json.Unmarshal([]byte(out), &res); err != nil {
		t.Fatalf("protect json: %v\n%s", err, out)
	}
	return res
}

// sentinels are the IDs of the stack's sentinel containers, running or not.
func (s *Stack) sentinels(t *testing.T) []string {
	t.Helper()
	return nonEmptyLines(s.MustDocker("ps", "-a", "-q", "--no-trunc", "--filter", "label="+labelSentinel+"=1",
		"--filter", "label="+LabelEchoProject+"="+s.Name))
}

func (s *Stack) volumeExists(name string) bool {
	s.t.Helper()
	r := s.Run(RunOpts{Quiet: true}, "docker", "volume", "inspect", name)
	return r.Code == 0
}

func (s *Stack) assertVolumes(t *testing.T, what string, exist bool, names ...string) {
	t.Helper()
	for _, v := range names {
		if got := s.volumeExists(v); got != exist {
			t.Errorf("%s: volume %s exists=%v, want %v", what, v, got, exist)
		}
	}
}

// serverAPIAtLeast compares the engine's API version with major.minor.
func (s *Stack) serverAPIAtLeast(t *testing.T, major, minor int) bool {
	t.Helper()
	v := strings.TrimSpace(s.MustDocker("version", "--format", "{{.Server.APIVersion}}"))
	ma, mi, _ := strings.Cut(v, ".")
	a, err1 := strconv.Atoi(ma)
	b, err2 := strconv.Atoi(mi)
	if err1 != nil || err2 != nil {
		t.Fatalf("server API version %q", v)
	}
	return a > major || (a == major && b >= minor)
}

type inspectedSentinel struct {
	Config struct {
		Image  string
		User   string
		Labels map[string]string
	}
	HostConfig struct {
		NetworkMode    string
		CapDrop        []string
		ReadonlyRootfs bool
		Memory         int64
		Init           *bool
		RestartPolicy  struct{ Name string }
	}
	Mounts []struct {
		Type        string
		Name        string
		Destination string
		RW          bool
	}
	State struct{ Running bool }
}

// checkSentinel asserts the contract: labels (never compose's), no network, no capabilities,
// a read-only root, little memory, unless-stopped, the database's image, and exactly the
// given volumes mounted read-only (no anonymous volume from the image's VOLUME).
func (s *Stack) checkSentinel(t *testing.T, id string, volumes []string) {
	t.Helper()
	var got []inspectedSentinel
	if err := json.Unmarshal([]byte(s.MustDocker("inspect", id)), &got); err != nil || len(got) != 1 {
		t.Fatalf("inspect sentinel: %v", err)
	}
	c := got[0]
	l := c.Config.Labels
	if l[labelSentinel] != "1" || l[LabelEchoProject] != s.Name || l[labelVolumes] != strings.Join(volumes, ",") {
		t.Errorf("sentinel labels %v, want volumes %v", l, volumes)
	}
	if _, ok := l[LabelComposeProject]; ok {
		t.Errorf("sentinel carries compose's project label")
	}
	h := c.HostConfig
	if h.NetworkMode != "none" || !slices.Contains(h.CapDrop, "ALL") || !h.ReadonlyRootfs || h.Memory <= 0 || h.Memory > 64<<20 ||
		h.Init == nil || !*h.Init || h.RestartPolicy.Name != "unless-stopped" {
		t.Errorf("sentinel host config %+v", h)
	}
	if c.Config.Image != pgImage || !c.State.Running {
		t.Errorf("sentinel image %s running %v, want %s running", c.Config.Image, c.State.Running, pgImage)
	}
	var mounted []string
	for _, m := range c.Mounts {
		if m.Type != "volume" {
			continue
		}
		mounted = append(mounted, m.Name)
		if m.RW || m.Destination != "/protect/"+m.Name {
			t.Errorf("sentinel mount %+v: want read-only at /protect/%s", m, m.Name)
		}
	}
	slices.Sort(mounted)
	if !slices.Equal(mounted, volumes) {
		t.Errorf("sentinel mounts volumes %v, want %v", mounted, volumes)
	}
}

type guardStatus struct {
	Protection struct {
		Protected bool       `json:"protected"`
		Since     *time.Time `json:"since"`
		Volumes   []string   `json:"volumes"`
	} `json:"protection"`
	LastVerifiedBackup *struct {
		Path string `json:"path"`
	} `json:"lastVerifiedBackup"`
}

func (s *Stack) guardStatus(t *testing.T) guardStatus {
	t.Helper()
	out, errOut, code := s.EchoBackup(append(s.ProjectArgs(), "status", "--format", "json")...)
	if code != 0 {
		t.Fatalf("status: exit %d\n%s", code, errOut)
	}
	var st guardStatus
	if err := json.Unmarshal([]byte(out), &st); err != nil {
		t.Fatalf("status json: %v\n%s", err, out)
	}
	return st
}

// backupLabels are the manifest labels of the backup at path, from list.
// unprotectSaved runs unprotect, which must remove the one sentinel and leave a backup that
// verifies and is pinned pre-unprotect; it returns the backup's path.
func (s *Stack) unprotectSaved(t *testing.T) string {
	t.Helper()
	out, errOut, code := s.EchoBackup(append(s.ProjectArgs(), "unprotect", "--format", "json")...)
	if code != 0 {
		t.Fatalf("unprotect: exit %d\n%s", code, errOut)
	}
	var un struct {
		Backup  string         `json:"backup"`
		Removed []sentinelJSON `json:"removed"`
	}
	if err := json.Unmarshal([]byte(out), &un); err != nil {
		t.Fatalf("unprotect json: %v\n%s", err, out)
	}
	if un.Backup == "" || len(un.Removed) != 1 || len(s.sentinels(t)) != 0 {
		t.Fatalf("unprotect: %+v, sentinels left %v", un, s.sentinels(t))
	}
	if out, code := s.verify(t, un.Backup); code != 0 {
		t.Errorf("verify %s: exit %d\n%s", un.Backup, code, out)
	}
	if l := s.backupLabels(t, un.Backup); l["pinned"] != "pre-unprotect" {
		t.Errorf("unprotect's backup labels %v, want pinned=pre-unprotect", l)
	}
	return un.Backup
}

func (s *Stack) backupLabels(t *testing.T, path string) map[string]string {
	t.Helper()
	out, errOut, code := s.EchoBackup(append(s.ProjectArgs(), "list", "--format", "json")...)
	if code != 0 {
		t.Fatalf("list: exit %d\n%s", code, errOut)
	}
	var entries []struct {
		Path   string            `json:"path"`
		Labels map[string]string `json:"labels"`
	}
	if err := json.Unmarshal([]byte(out), &entries); err != nil {
		t.Fatalf("list json: %v\n%s", err, out)
	}
	for _, e := range entries {
		if e.Path == path {
			return e.Labels
		}
	}
	t.Fatalf("backup %s is not in the list:\n%s", path, out)
	return nil
}

// TestGuardEngineCommands: after protect, the engine's own commands leave the project's data
// alone: `docker compose down -v`, `docker volume rm`, `docker volume prune` and `docker
// system prune --volumes`. The prunes are scoped to this stack by label (other tests run on
// the same engine), and an unprotected scratch volume with the same label shows that each
// scoped prune does remove named volumes where the engine's API does. After unprotect, which
// takes a verified backup, the same `down -v` removes the volumes.
func TestGuardEngineCommands(t *testing.T) {
	s := NewStack(t, "custom")
	s.Up()
	before := s.state()
	pg, data, cache := s.Volume("pgdata"), s.Volume("echo_data"), s.Volume("cache_data")
	want := []string{data, pg}

	res := s.protect(t)
	if !res.Changed || !slices.Equal(res.Sentinel.Volumes, want) || res.Sentinel.Name != "echobackup-sentinel-"+s.Name {
		t.Fatalf("protect: %+v, want a new sentinel holding %v", res, want)
	}
	s.checkSentinel(t, res.Sentinel.ID, want)
	again := s.protect(t)
	if again.Changed || again.Sentinel.ID != res.Sentinel.ID || !again.Sentinel.Since.Equal(res.Sentinel.Since) {
		t.Errorf("second protect changed something: %+v, first %+v", again, res)
	}
	if ids := s.sentinels(t); len(ids) != 1 {
		t.Errorf("sentinels after two protects: %v", ids)
	}
	if st := s.guardStatus(t); !st.Protection.Protected || st.Protection.Since == nil || !slices.Equal(st.Protection.Volumes, want) {
		t.Errorf("status after protect: %+v", st.Protection)
	}

	// compose removes the unprotected cache volume in the same command, and keeps the others.
	s.MustCompose("down", "-v", "--timeout", "1")
	s.assertVolumes(t, "after compose down -v", true, pg, data)
	s.assertVolumes(t, "after compose down -v (the cache is not protected)", false, cache)

	if _, errOut, code := s.Docker("volume", "rm", pg); code == 0 || !strings.Contains(errOut, "in use") {
		t.Errorf("docker volume rm %s: exit %d, %q; want refused as in use", pg, code, errOut)
	}

	scope := "label=" + LabelComposeProject + "=" + s.Name
	newAPI := s.serverAPIAtLeast(t, 1, 42)
	scratch := func(name string) string {
		v := s.Volume(name)
		s.MustDocker("volume", "create", "--label", LabelComposeProject+"="+s.Name, v)
		return v
	}
	v1 := scratch("scratch1")
	s.MustDocker("volume", "prune", "-f", "--filter", scope)
	if newAPI {
		s.MustDocker("volume", "prune", "-a", "-f", "--filter", scope)
	} else if _, _, code := s.Docker("volume", "prune", "-a", "-f", "--filter", scope); code == 0 {
		t.Errorf("volume prune -a passed on an engine below API 1.42")
	}
	s.assertVolumes(t, "after volume prune", true, pg, data)
	s.assertVolumes(t, "after volume prune (unprotected scratch volume)", false, v1)

	v2 := scratch("scratch2")
	// Never -a here: image pruning is not what this is about, and the test image must stay.
	s.MustDocker("system", "prune", "-f", "--volumes", "--filter", scope)
	s.MustDocker("system", "prune", "-f", "--volumes", "--filter", "label="+LabelEchoProject+"="+s.Name)
	s.assertVolumes(t, "after system prune", true, pg, data)
	// From API 1.42 on, system prune removes only anonymous volumes.
	s.assertVolumes(t, "after system prune (unprotected scratch volume)", newAPI, v2)
	if ids := s.sentinels(t); len(ids) != 1 || ids[0] != res.Sentinel.ID {
		t.Errorf("sentinels after the prunes: %v, want %s", ids, res.Sentinel.ID)
	}

	s.Up()
	assertSameState(t, "after down -v, volume rm and the prunes", before, s.state())

	unprotected := s.unprotectSaved(t)
	if st := s.guardStatus(t); st.Protection.Protected || st.LastVerifiedBackup == nil || st.LastVerifiedBackup.Path != unprotected {
		t.Errorf("status after unprotect: %+v, last verified %+v", st.Protection, st.LastVerifiedBackup)
	}

	s.MustCompose("down", "-v", "--timeout", "1")
	s.assertVolumes(t, "after unprotect and compose down -v", false, pg, data)
}

// TestGuardDown: `docker echobackup down -v` refuses, removing nothing and starting the app it
// stopped again, when its backup cannot be written; with the database stopped it starts it
// for a verified, pinned pre-down backup, releases the protection and removes the volumes,
// and a restore of that backup brings the state back.
func TestGuardDown(t *testing.T) {
	s := NewStack(t, "custom")
	s.Up()
	pg, data := s.Volume("pgdata"), s.Volume("echo_data")
	sentinel := s.protect(t).Sentinel.ID
	down := append(s.ProjectArgs(), "down", "-v", "--timeout", "1")

	blocker := filepath.Join(t.TempDir(), "a-file")
	if err := os.WriteFile(blocker, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	running := s.runningServices(t)
	out, errOut, code := s.EchoBackup(append(down, "-o", filepath.Join(blocker, "backups"))...)
	if code == 0 || !strings.Contains(errOut, "nothing was removed") || !strings.Contains(errOut, "started cache, echo again") {
		t.Errorf("down -v with a backup that cannot be written: exit %d\n%s%s", code, out, errOut)
	}
	s.assertVolumes(t, "after a refused down -v", true, pg, data)
	if got := s.runningServices(t); got != running {
		t.Errorf("running services after a refused down -v: %s, want %s as before", got, running)
	}
	if ids := s.sentinels(t); len(ids) != 1 || ids[0] != sentinel {
		t.Errorf("sentinels after a refused down -v: %v, want %s", ids, sentinel)
	}

	before := s.state()
	s.MustCompose("stop", "db")
	out, errOut, code = s.EchoBackup(down...)
	if code != 0 {
		t.Fatalf("down -v with the database stopped: exit %d\n%s", code, errOut)
	}
	s.assertVolumes(t, "after echobackup down -v", false, pg, data)
	if ids := s.sentinels(t); len(ids) != 0 {
		t.Errorf("sentinels after down -v: %v", ids)
	}
	if ids := nonEmptyLines(s.MustCompose("ps", "-a", "-q")); len(ids) != 0 {
		t.Errorf("containers after down -v: %v", ids)
	}
	path := backupPathIn(t, out)
	if l := s.backupLabels(t, path); l["pinned"] != "pre-down" {
		t.Errorf("down's backup labels %v, want pinned=pre-down", l)
	}
	if out, code := s.verify(t, path, "--deep"); code != 0 {
		t.Errorf("verify --deep %s: exit %d\n%s", path, code, out)
	}
	if out, code := s.restore(path, "--yes"); code != 0 {
		t.Fatalf("restore: exit %d\n%s", code, out)
	}
	assertSameState(t, "after echobackup down -v and restore", before, s.state())
}

// TestGuardDownKeepsLastWrites: the app is stopped before the pre-down backup, so every write
// it made up to the end is in the backup. A writer in the app's container inserts numbered
// rows and prints each number once committed; after `down -v` and a restore, the last
// number printed is there.
func TestGuardDownKeepsLastWrites(t *testing.T) {
	s := NewStack(t, "custom")
	s.Up()
	s.Psql("create table guard_writes (n int primary key);")
	w := s.startWriter(t)
	w.waitFor(t, 20)
	out, errOut, code := s.EchoBackup(append(s.ProjectArgs(), "down", "-v", "--timeout", "1")...)
	if code != 0 {
		t.Fatalf("down -v while the app writes: exit %d\n%s", code, errOut)
	}
	last := w.stop(t)
	path := backupPathIn(t, out)
	if out, code := s.restore(path, "--yes"); code != 0 {
		t.Fatalf("restore: exit %d\n%s", code, out)
	}
	got := s.Psql("select coalesce(max(n), 0), count(*) from guard_writes;")
	var max, count int
	if _, err := fmt.Sscanf(got, "%d|%d", &max, &count); err != nil {
		t.Fatalf("reading guard_writes: %q: %v", got, err)
	}
	t.Logf("the writer committed %d rows; the pre-down backup holds %d", last, count)
	if max < last || count != max {
		t.Errorf("the pre-down backup holds rows 1..%d (%d rows); the app had committed up to %d before down", max, count, last)
	}
}

// writer is a loop in the app's container that inserts rows 1, 2, 3… and prints each number
// once its insert is committed.
type writer struct {
	cmd  *exec.Cmd
	mu   sync.Mutex
	last int
	done chan struct{}
}

func (s *Stack) startWriter(t *testing.T) *writer {
	t.Helper()
	script := `i=0; while i=$((i+1)); psql -X -q -v ON_ERROR_STOP=1 "$DATABASE_URL" -c "insert into guard_writes values ($i)" >/dev/null; do echo $i; done`
	cmd := exec.Command("docker", s.composeArgs("exec", "-T", s.AppService, "sh", "-c", script)...)
	cmd.Dir, cmd.Env = s.Dir, append(os.Environ(), s.Env...)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	w := &writer{cmd: cmd, done: make(chan struct{})}
	go func() {
		defer close(w.done)
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			if n, err := strconv.Atoi(strings.TrimSpace(sc.Text())); err == nil {
				w.mu.Lock()
				w.last = n
				w.mu.Unlock()
			}
		}
		_ = cmd.Wait()
	}()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-w.done
	})
	return w
}

func (w *writer) committed() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.last
}

func (w *writer) waitFor(t *testing.T, n int) {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for w.committed() < n {
		select {
		case <-w.done:
			t.Fatalf("the writer ended after %d rows", w.committed())
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("the writer committed only %d rows in a minute", w.committed())
		}
	}
}

// stop waits for the writer to end (its container is gone) and returns the last number it
// printed.
func (w *writer) stop(t *testing.T) int {
	t.Helper()
	select {
	case <-w.done:
	case <-time.After(time.Minute):
		t.Fatalf("the writer still runs a minute after down -v")
	}
	return w.committed()
}

// TestGuardUnprotectAfterDown: after a plain `docker compose down` (no containers, no network)
// unprotect starts the database for its verified backup and puts everything back as it was:
// no container and no network of the project are left, and the volumes stay.
func TestGuardUnprotectAfterDown(t *testing.T) {
	s := NewStack(t, "custom")
	s.Up()
	pg, data := s.Volume("pgdata"), s.Volume("echo_data")
	s.protect(t)
	s.Down()
	if nets := s.networks(t); len(nets) != 0 {
		t.Fatalf("networks after compose down: %v", nets)
	}
	s.unprotectSaved(t)
	if ids := nonEmptyLines(s.MustCompose("ps", "-a", "-q")); len(ids) != 0 {
		t.Errorf("containers after unprotect: %v", ids)
	}
	if nets := s.networks(t); len(nets) != 0 {
		t.Errorf("networks after unprotect: %v, want none as before", nets)
	}
	if ids := s.sentinels(t); len(ids) != 0 {
		t.Errorf("sentinels after unprotect: %v", ids)
	}
	s.assertVolumes(t, "after unprotect", true, pg, data)
}

// networks are the names of the stack's compose networks.
func (s *Stack) networks(t *testing.T) []string {
	t.Helper()
	return nonEmptyLines(s.MustDocker("network", "ls", "-q", "--filter", "label="+LabelComposeProject+"="+s.Name))
}

// TestGuardFoldsLeftoverSentinel: a second sentinel left by an interrupted replacement, holding
// another subset of volumes (one of them outside the current compose files) and sorting after
// the first, is folded in: protect starts one sentinel holding the union before either old
// one goes, keeps the earliest "since", and no volume is free at the end.
func TestGuardFoldsLeftoverSentinel(t *testing.T) {
	s := NewStack(t, "custom")
	s.Up()
	pg, data := s.Volume("pgdata"), s.Volume("echo_data")
	first := s.protect(t)
	other := s.Volume("other_profile")
	s.MustDocker("volume", "create", "--label", LabelComposeProject+"="+s.Name, other)
	since := first.Sentinel.Since.Add(-time.Hour).UTC()
	leftover := strings.TrimSpace(s.MustDocker(append(append([]string{"run", "-d", "--name", "echobackup-sentinel-" + s.Name + "-next"},
		s.HarnessLabels()...),
		"--label", labelSentinel+"=1", "--label", labelVolumes+"="+other+","+pg,
		"--label", "com.echobackup.since="+since.Format(time.RFC3339),
		"--network", "none", "--tmpfs", "/var/lib/postgresql/data",
		"--mount", "type=volume,src="+other+",dst=/protect/"+other+",readonly",
		"--mount", "type=volume,src="+pg+",dst=/protect/"+pg+",readonly",
		"--entrypoint", "sleep", pgImage, "infinity")...))

	res := s.protect(t)
	want := []string{data, other, pg}
	if !res.Changed || !slices.Equal(res.Sentinel.Volumes, want) || !res.Sentinel.Since.Equal(since) ||
		res.Sentinel.Name != "echobackup-sentinel-"+s.Name {
		t.Errorf("protect with a leftover sentinel: %+v, want one named echobackup-sentinel-%s holding %v since %s", res, s.Name, want, since)
	}
	ids := s.sentinels(t)
	if len(ids) != 1 || ids[0] != res.Sentinel.ID || ids[0] == leftover || ids[0] == first.Sentinel.ID {
		t.Fatalf("sentinels after folding: %v, want only the new %s", ids, res.Sentinel.ID)
	}
	s.checkSentinel(t, res.Sentinel.ID, want)
	for _, v := range want {
		if _, errOut, code := s.Docker("volume", "rm", v); code == 0 || !strings.Contains(errOut, "in use") {
			t.Errorf("docker volume rm %s after folding: exit %d, %q; want refused as in use", v, code, errOut)
		}
	}
	if again := s.protect(t); again.Changed || again.Sentinel.ID != res.Sentinel.ID {
		t.Errorf("a second protect changed something: %+v", again)
	}
}

// backupPathIn finds the archive's path in down's report.
func backupPathIn(t *testing.T, out string) string {
	t.Helper()
	for _, f := range strings.Fields(out) {
		if strings.HasSuffix(f, ".tar.zst") && filepath.IsAbs(f) {
			if _, err := os.Stat(f); err != nil {
				t.Fatalf("down named %s: %v", f, err)
			}
			return f
		}
	}
	t.Fatalf("no backup path in down's output:\n%s", out)
	return ""
}

// TestGuardSaveProtect: save --protect protects; a new volume of the project is added to the
// protection by the next protect; and `x-echobackup: {protect: true}` in the compose file
// makes every save protect.
func TestGuardSaveProtect(t *testing.T) {
	s := NewStack(t, "custom")
	s.Up()
	pg, data := s.Volume("pgdata"), s.Volume("echo_data")
	s.save(t)
	if ids := s.sentinels(t); len(ids) != 0 {
		t.Fatalf("a plain save protected the project: %v", ids)
	}
	nextSecond() // backups are named to the second: two in one second collide
	s.save(t, "--protect")
	ids := s.sentinels(t)
	if len(ids) != 1 {
		t.Fatalf("sentinels after save --protect: %v", ids)
	}
	s.checkSentinel(t, ids[0], []string{data, pg})

	// A third compose file adds a service with a volume of its own.
	extra := "services:\n  extra:\n    image: ${ECHOBACKUP_PG_IMAGE}\n    command: [\"sleep\", \"infinity\"]\n    init: true\n" +
		"    volumes:\n      - extra_data:/extra\nvolumes:\n  extra_data:\n"
	if err := os.WriteFile(filepath.Join(s.Dir, "compose.extra.yaml"), []byte(extra), 0o644); err != nil {
		t.Fatal(err)
	}
	files := append(s.ProjectArgs(), "-f", "compose.extra.yaml")
	s.MustDocker(append(append([]string{"compose"}, files...), "up", "-d", "extra")...)
	ext := s.Volume("extra_data")
	first := s.protect(t) // the sentinel of save --protect: nothing to change yet
	grown := s.protect(t, "-f", "compose.extra.yaml")
	all := []string{data, ext, pg}
	if first.Changed || !grown.Changed || !slices.Equal(grown.Added, []string{ext}) || !slices.Equal(grown.Sentinel.Volumes, all) ||
		!grown.Sentinel.Since.Equal(first.Sentinel.Since) || grown.Sentinel.ID == first.Sentinel.ID ||
		grown.Sentinel.Name != "echobackup-sentinel-"+s.Name {
		t.Errorf("protect with a new volume: %+v, before %+v", grown, first)
	}
	if ids := s.sentinels(t); len(ids) != 1 || ids[0] != grown.Sentinel.ID {
		t.Errorf("sentinels after adding a volume: %v, want %s", ids, grown.Sentinel.ID)
	}
	s.checkSentinel(t, grown.Sentinel.ID, all)
	// Without the third file, protect keeps what the sentinel holds.
	if again := s.protect(t); again.Changed {
		t.Errorf("protect without the extra file changed the sentinel: %+v", again)
	}

	if _, errOut, code := s.EchoBackup(append(s.ProjectArgs(), "unprotect", "--no-backup")...); code != 0 {
		t.Fatalf("unprotect --no-backup: exit %d\n%s", code, errOut)
	}
	if ids := s.sentinels(t); len(ids) != 0 {
		t.Fatalf("sentinels after unprotect: %v", ids)
	}
	f, err := os.OpenFile(filepath.Join(s.Dir, "compose.yaml"), os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	_, err = f.WriteString("\nx-echobackup:\n  protect: true\n")
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		t.Fatal(err)
	}
	nextSecond()
	saved := s.state()
	s.save(t)
	if ids := s.sentinels(t); len(ids) != 1 {
		t.Fatalf("sentinels after a save with x-echobackup.protect: %v", ids)
	}
	out, errOut, code := s.EchoBackup(append(s.ProjectArgs(), "status")...)
	if code != 0 || !strings.Contains(out, "Protected: yes") || !strings.Contains(out, "Last verified backup:") {
		t.Errorf("status: exit %d\n%s%s", code, out, errOut)
	}

	// The sentinel's read-only mounts do not stand in a restore's way.
	s.change(t)
	if out, code := s.restore("latest", "--yes"); code != 0 {
		t.Fatalf("restore while protected: exit %d\n%s", code, out)
	}
	assertSameState(t, "after a restore while protected", saved, s.state())
	if ids := s.sentinels(t); len(ids) != 1 {
		t.Errorf("sentinels after the restore: %v", ids)
	}
}

func nextSecond() {
	time.Sleep(time.Until(time.Now().Truncate(time.Second).Add(time.Second + 10*time.Millisecond)))
}

// TestGuardFollowsDatabaseImage: after the database moves to a new image, protect moves the
// sentinel onto it (the old image could not be pruned otherwise), keeping "since".
func TestGuardFollowsDatabaseImage(t *testing.T) {
	// A second image, made before the stack so that it is removed after the stack's cleanup
	// has removed the sentinel that uses it.
	newImage := "ebt-guard-" + randomHex(4) + ":local"
	cid := strings.TrimSpace(mustRun(t, "docker", "create", "--label", LabelTest+"=1", pgImage))
	mustRun(t, "docker", "commit", "--change", "LABEL com.echobackup.test.guard=1", cid, newImage)
	mustRun(t, "docker", "rm", cid)
	t.Cleanup(func() { _, _ = combined(context.Background(), "", nil, "docker", "rmi", newImage) })

	s := NewStack(t, "custom")
	s.Up()
	first := s.protect(t)
	s.Env = append(s.Env, "ECHOBACKUP_PG_IMAGE="+newImage)
	s.Up() // compose recreates the containers on the new image; the volumes stay
	moved := s.protect(t)
	if !moved.Changed || len(moved.Added) != 0 || moved.Sentinel.ID == first.Sentinel.ID || !moved.Sentinel.Since.Equal(first.Sentinel.Since) {
		t.Errorf("protect after an image change: %+v, before %+v", moved, first)
	}
	if img := strings.TrimSpace(s.MustDocker("inspect", "--format", "{{.Config.Image}}", moved.Sentinel.ID)); img != newImage {
		t.Errorf("sentinel image %s, want %s", img, newImage)
	}
	if again := s.protect(t); again.Changed {
		t.Errorf("a second protect on the new image changed something: %+v", again)
	}
	if ids := s.sentinels(t); len(ids) != 1 {
		t.Errorf("sentinels: %v", ids)
	}
}

func mustRun(t *testing.T, name string, args ...string) string {
	t.Helper()
	out, err := output(context.Background(), "", nil, name, args...)
	if err != nil {
		t.Fatal(err)
	}
	return out
}
