//go:build e2e

package e2e

import (
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

// Account is a user without root that commands run as: a self-hoster on a NAS is often an
// ordinary user in the docker group, while Echo's files belong to its image's user (1001).
type Account struct {
	UID, GID     int
	Groups       []uint32 // supplementary: the engine socket's group
	Home         string
	DockerConfig string // a copy of the suite's, owned by the user
	Bin          string // first in PATH: a copy of the docker CLI the suite runs
}

// NonRootUID is the user the non-root test runs as; it needs no entry in /etc/passwd.
const NonRootUID = 2417

// AsNonRoot makes the stack's commands run as an ordinary user in the group of the engine's
// socket, owning the project folder (but not the data folder, which stays AppUID's), with a
// home and a DOCKER_CONFIG of its own. Run as root only: the suite itself is that user otherwise.
func (s *Stack) AsNonRoot(t *testing.T) *Account {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Fatalf("AsNonRoot runs commands as another user and needs root (the suite runs as uid %d: it is non-root already)", os.Geteuid())
	}
	gid := s.socketGroup(t)
	a := &Account{UID: NonRootUID, GID: NonRootUID, Groups: []uint32{uint32(gid)}, Home: t.TempDir()}
	a.DockerConfig = filepath.Join(a.Home, ".docker")
	if err := copyTree(dockerConfig, a.DockerConfig); err != nil {
		t.Fatalf("copying DOCKER_CONFIG for uid %d: %v", a.UID, err)
	}
	// The docker CLI the suite runs may sit in root's home (scripts/engine29.sh's cache).
	cli, err := exec.LookPath("docker")
	if err != nil {
		t.Fatalf("no docker CLI in PATH: %v", err)
	}
	a.Bin = filepath.Join(a.Home, "bin")
	if err := os.MkdirAll(a.Bin, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := copyFile(cli, filepath.Join(a.Bin, "docker"), 0o755); err != nil {
		t.Fatalf("copying the docker CLI for uid %d: %v", a.UID, err)
	}
	handTree(t, a.Home, a.UID, a.GID, "")
	handTree(t, s.Dir, a.UID, a.GID, s.DataDir())
	// t.TempDir's folders are 0700 root: the user must pass through them to the project.
	for d := filepath.Dir(s.Dir); d != os.TempDir() && d != "/" && d != "."; d = filepath.Dir(d) {
		if err := os.Chmod(d, 0o711); err != nil {
			t.Fatalf("opening %s to uid %d: %v", d, a.UID, err)
		}
	}
	s.As = a
	t.Logf("commands now run as uid %d gid %d, groups %v (the engine socket's), in %s", a.UID, a.GID, a.Groups, s.Dir)
	return a
}

// socketGroup is the group of the engine's unix socket, which must let its group in.
func (s *Stack) socketGroup(t *testing.T) int {
	t.Helper()
	host := strings.TrimSpace(s.MustDocker("context", "inspect", "--format", "{{.Endpoints.docker.Host}}"))
	path, ok := strings.CutPrefix(host, "unix://")
	if !ok {
		t.Fatalf("the engine is at %s, not a unix socket: no group to join", host)
	}
	info, err := os.Stat(path)
	if err != nil {
		t.Fatalf("the engine socket: %v", err)
	}
	if info.Mode().Perm()&0o060 != 0o060 {
		t.Fatalf("the engine socket %s is %s: its group cannot use it", path, info.Mode().Perm())
	}
	return int(info.Sys().(*syscall.Stat_t).Gid)
}

// handTree gives root's tree to uid:gid, leaving skip (and what is under it) alone.
func handTree(t *testing.T, root string, uid, gid int, skip string) {
	t.Helper()
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if skip != "" && p == skip {
			return filepath.SkipDir
		}
		return os.Lchown(p, uid, gid)
	})
	if err != nil {
		t.Fatalf("handing %s to uid %d: %v", root, uid, err)
	}
}

// TestNonRootUser: an ordinary user in the docker group, owning the project folder while the
// data folder belongs to Echo's user (1001, files up to mode 0600), saves, verifies deeply,
// lists, restores after changes, and protects and unprotects, with the same results as root.
func TestNonRootUser(t *testing.T) {
	s := NewStack(t, "seed")
	s.Up()
	want := s.state()
	s.AsNonRoot(t)
	if r := s.Run(RunOpts{}, "id", "-u"); r.Code != 0 || strings.TrimSpace(r.Stdout) != fmt.Sprint(NonRootUID) {
		t.Fatalf("id -u as the user: exit %d, %q", r.Code, r.Stdout)
	}

	saved := s.save(t)
	if saved.Rows != seedRows() || saved.Files == 0 {
		t.Errorf("save as uid %d: %+v, want %d rows and the data folder's files", NonRootUID, saved, seedRows())
	}
	if out, code := s.verify(t, "--deep", saved.Path); code != 0 {
		t.Fatalf("verify --deep as uid %d: exit %d\n%s", NonRootUID, code, out)
	}
	if info, err := os.Stat(saved.Path); err != nil || info.Sys().(*syscall.Stat_t).Uid != NonRootUID {
		t.Errorf("the backup %s is not the user's: %v", saved.Path, err)
	}
	if entries := s.list(t); len(entries) != 1 || entries[0].Verified == nil || !entries[0].Verified.OK {
		t.Errorf("list as uid %d: %+v", NonRootUID, entries)
	}

	s.change(t)
	if out, code := s.restore(saved.Path, "--yes"); code != 0 {
		t.Fatalf("restore as uid %d: exit %d\n%s", NonRootUID, code, out)
	}
	assertSameState(t, fmt.Sprintf("after restore as uid %d", NonRootUID), want, s.state())
	assertDataOwner(t, s.DataDir(), AppUID)

	res := s.protect(t)
	if !res.Changed || len(res.Sentinel.Volumes) == 0 {
		t.Fatalf("protect as uid %d: %+v", NonRootUID, res)
	}
	s.checkSentinel(t, res.Sentinel.ID, res.Sentinel.Volumes)
	s.unprotectSaved(t)
}

// assertDataOwner: everything in the data folder still belongs to Echo's user.
func assertDataOwner(t *testing.T, dir string, uid int) {
	t.Helper()
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		info, err := os.Lstat(p)
		if err != nil {
			return err
		}
		if got := info.Sys().(*syscall.Stat_t).Uid; got != uint32(uid) {
			t.Errorf("%s belongs to uid %d after the restore, want %d", p, got, uid)
		}
		return nil
	})
	if err != nil {
		t.Errorf("walking %s: %v", dir, err)
	}
}

func fileExists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}
