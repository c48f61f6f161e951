//go:build e2e

package e2e

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// oddTree puts into dir what real data folders hold besides covers: links to the music
// library and out of the folder, a Latin-1 name, hard links, a 64 MB sparse file, long
// names, deep paths, special modes, numeric owners, empty files and folders, and live
// endpoints (a socket, a FIFO, a device node) that a backup cannot hold. It returns the
// paths, relative to dir, that save must leave out.
func oddTree(t *testing.T, dir string) []string {
	t.Helper()
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	odd := filepath.Join(dir, "odd")
	must(os.MkdirAll(filepath.Join(odd, "empty-folder"), 0o755))
	must(os.MkdirAll(filepath.Join(dir, "metadata"), 0o755))
	must(os.Symlink("/music", filepath.Join(dir, "metadata", "library")))
	must(os.Symlink("../../outside/of/data", filepath.Join(odd, "climbs-out")))
	must(os.Symlink("gone", filepath.Join(odd, "dangling")))
	must(os.WriteFile(filepath.Join(odd, "caf\xe9-latin1"), []byte("latin-1 name"), 0o644))
	must(os.WriteFile(filepath.Join(odd, "cover.jpg"), []byte("one file, two names"), 0o644))
	must(os.Link(filepath.Join(odd, "cover.jpg"), filepath.Join(odd, "empty-folder", "same-cover.jpg")))
	must(os.WriteFile(filepath.Join(odd, "empty"), nil, 0o600))
	must(os.WriteFile(filepath.Join(odd, strings.Repeat("n", 200)), []byte("long name"), 0o644))
	deep := odd
	for i := range 20 {
		deep = filepath.Join(deep, "level-"+strings.Repeat(string(rune('a'+i)), 40))
	}
	must(os.MkdirAll(deep, 0o755))
	must(os.WriteFile(filepath.Join(deep, "bottom.txt"), []byte("deep"), 0o640))
	sparse, err := os.Create(filepath.Join(odd, "sparse.img"))
	must(err)
	_, err = sparse.WriteAt([]byte("data in the middle"), 32<<20)
	must(err)
	must(sparse.Truncate(64 << 20))
	must(sparse.Close())
	setuid := filepath.Join(odd, "setuid-tool")
	must(os.WriteFile(setuid, []byte("#!/bin/sh\n"), 0o755))
	must(os.Chown(setuid, 4242, 4343))
	must(os.Chmod(setuid, 0o4755))
	must(os.Chmod(filepath.Join(odd, "empty-folder"), 0o1777))
	must(os.Lchown(filepath.Join(odd, "dangling"), 5001, 5002))
	must(syscall.Mknod(filepath.Join(odd, "echo.sock"), syscall.S_IFSOCK|0o600, 0))
	must(syscall.Mkfifo(filepath.Join(odd, "events.fifo"), 0o600))
	must(syscall.Mknod(filepath.Join(odd, "null"), syscall.S_IFCHR|0o666, 1<<8|3))
	old := time.Date(2001, 2, 3, 4, 5, 6, 0, time.UTC)
	must(os.Chtimes(filepath.Join(odd, "caf\xe9-latin1"), old, old))
	must(os.Chtimes(odd, old, old))
	return []string{"odd/echo.sock", "odd/events.fifo", "odd/null"}
}

// withoutPaths drops the left-out entries from a file set.
func withoutPaths(set FileSet, paths []string) FileSet {
	var out FileSet
	for _, e := range set {
		keep := true
		for _, p := range paths {
			keep = keep && e.Path != p
		}
		if keep {
			out = append(out, e)
		}
	}
	return out
}

type oddCase struct {
	name, fixture, stage string
	// holes: save reads the folder from this machine's disk, restore writes it there.
	holes bool
}

// TestOddDataFolderRoundTrip: a data folder holding every kind of odd but real content saves,
// verifies (also --deep), and after `down -v` and `rm -rf data` restores identically: link
// targets as saved (absolute, climbing out, dangling), hard links as links, holes, names of
// any bytes, modes, owners, mtimes. Sockets, FIFOs and devices are named, not kept. Both ways
// a restore writes files are checked: on this machine, and through the engine's extraction.
func TestOddDataFolderRoundTrip(t *testing.T) {
	cases := []oddCase{
		{name: "bind", fixture: "seed", holes: true},
		{name: "bind-through-engine", fixture: "seed", stage: "engine"},
		// A volume is read through the engine: it has no sockets (the engine's copy drops
		// them) and no holes in its stream.
		{name: "volume", fixture: "custom"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			s := NewStack(t, c.fixture)
			if c.stage != "" {
				s.Env = append(s.Env, "ECHOBACKUP_STAGE="+c.stage)
			}
			s.Up()
			dir := s.dataPath(t)
			leftOut := oddTree(t, dir)
			if c.fixture != "seed" {
				leftOut = leftOut[1:] // the socket, which the engine's copy never shows
			}
			before := state{db: s.FingerprintDB(), files: withoutPaths(s.FingerprintData(), append(leftOut, "odd/echo.sock")).Fingerprint()}

			out, errOut, code := s.EchoBackup(append(s.ProjectArgs(), "save", "--format", "json")...)
			if code != 0 {
				t.Fatalf("save: exit %d: %s", code, errOut)
			}
			var res struct {
				Path    string `json:"path"`
				Skipped int    `json:"skipped"`
			}
			if err := json.Unmarshal([]byte(out), &res); err != nil {
				t.Fatalf("save json: %v\n%s", err, out)
			}
			if res.Skipped != len(leftOut) || !strings.Contains(errOut, fmt.Sprintf("left out %d entries", len(leftOut))) ||
				!strings.Contains(errOut, "events.fifo") {
				t.Errorf("save must name what it left out (%v): skipped=%d, stderr:\n%s", leftOut, res.Skipped, errOut)
			}
			for _, deep := range []bool{false, true} {
				args := []string{"latest"}
				if deep {
					args = append(args, "--deep")
				}
				if vout, code := s.verify(t, args...); code != 0 {
					t.Fatalf("verify %v: exit %d\n%s", args, code, vout)
				}
			}
			s.MustCompose("down", "-v", "--timeout", "1")
			if err := os.RemoveAll(s.DataDir()); err != nil {
				t.Fatal(err)
			}
			rout, code := s.restore("latest", "--yes")
			if code != 0 {
				t.Fatalf("restore: exit %d\n%s", code, rout)
			}
			assertSameState(t, "odd data folder after down -v and restore", before, s.state())
			checkOddTreeExtras(t, s.dataPath(t), c, rout)
		})
	}
}

// dataPath is where Echo's /app/data is on this machine: ./data, or the volume's folder.
func (s *Stack) dataPath(t *testing.T) string {
	t.Helper()
	if s.DataVolume == "" {
		return s.DataDir()
	}
	return strings.TrimSpace(s.MustDocker("volume", "inspect", "--format", "{{.Mountpoint}}", s.Volume(s.DataVolume)))
}

// checkOddTreeExtras checks what the fingerprint does not show: hard links, holes, mtimes.
func checkOddTreeExtras(t *testing.T, dir string, c oddCase, restoreOut string) {
	t.Helper()
	var a, b, sp syscall.Stat_t
	odd := filepath.Join(dir, "odd")
	if err := firstErr(syscall.Stat(filepath.Join(odd, "cover.jpg"), &a),
		syscall.Stat(filepath.Join(odd, "empty-folder", "same-cover.jpg"), &b),
		syscall.Stat(filepath.Join(odd, "sparse.img"), &sp)); err != nil {
		t.Fatal(err)
	}
	if a.Ino != b.Ino || a.Nlink != 2 {
		t.Errorf("hard links came back as separate files (inodes %d, %d; links %d)", a.Ino, b.Ino, a.Nlink)
	}
	if used := sp.Blocks * 512; c.holes && used > 1<<20 {
		t.Errorf("the 64 MB sparse file takes %d bytes on disk after the restore: its holes are gone", used)
	}
	if c.stage == "engine" && !strings.Contains(restoreOut, "restored whole, without their holes") {
		t.Errorf("a restore through the engine must say it could not keep the holes:\n%s", restoreOut)
	}
	for _, p := range []string{filepath.Join(odd, "caf\xe9-latin1"), odd} {
		info, err := os.Lstat(p)
		if err != nil {
			t.Fatal(err)
		}
		if want := time.Date(2001, 2, 3, 4, 5, 6, 0, time.UTC); !info.ModTime().Equal(want) {
			t.Errorf("%s: mtime %s, saved %s", p, info.ModTime().UTC(), want)
		}
	}
}
