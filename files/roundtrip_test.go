package files_test

import (
	"archive/tar"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/echo-backup/echo-backup/archive"
	"github.com/echo-backup/echo-backup/files"
)

var (
	trees = flag.Int("fidelity.trees", 6, "random trees the round-trip property test generates")
	seed  = flag.Uint64("fidelity.seed", 1, "seed of the first random tree")
)

// TestRoundTripRandomTrees is the property behind save and restore: any tree of what a data
// folder holds comes back identical (bytes, modes, owners, mtimes, link targets, link counts,
// holes) once saved into an archive, checked by Walk and restored into an empty folder.
// More trees: go test ./files -run RoundTrip -fidelity.trees 500 -fidelity.seed 7
func TestRoundTripRandomTrees(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("restoring owners needs root")
	}
	for i := range *trees {
		s := *seed + uint64(i)
		t.Run(fmt.Sprintf("seed-%d", s), func(t *testing.T) {
			src := filepath.Join(t.TempDir(), "data")
			g := &gen{r: rand.New(rand.NewPCG(s, s^0x9e3779b97f4a7c15)), t: t}
			g.tree(src)
			roundTrip(t, src, g.skipped)
		})
	}
}

// roundTrip saves src, restores it, and compares; skipped are the names save must leave out.
func roundTrip(t *testing.T, src string, skipped map[string]string) {
	t.Helper()
	dir := t.TempDir()
	path := filepath.Join(dir, "b.tar.zst")
	w, err := archive.Create(path, archive.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Abort()
	if err := files.ReadDir(context.Background(), src, "files/data/", nil, w); err != nil {
		t.Fatalf("saving: %v", err)
	}
	m := &archive.Manifest{Sources: []archive.Source{{Name: "data", Kind: "bind", Path: src, Member: "files/data/"}}}
	if err := w.Commit(m); err != nil {
		t.Fatalf("committing: %v", err)
	}
	got := map[string]string{}
	for _, s := range m.Skipped {
		got[strings.TrimPrefix(s.Name, "files/data/")] = s.Kind
	}
	if fmt.Sprint(got) != fmt.Sprint(skipped) {
		t.Errorf("left out %v, want %v", got, skipped)
	}
	// The manifest is read back from the file: names must survive JSON byte for byte.
	out := filepath.Join(dir, "restored")
	if err := os.Mkdir(out, 0o700); err != nil {
		t.Fatal(err)
	}
	x, err := files.NewExtractor(out)
	if err != nil {
		t.Fatal(err)
	}
	_, err = archive.Walk(path, func(hdr *tar.Header, r io.Reader) error {
		rel := strings.TrimSuffix(strings.TrimPrefix(hdr.Name, "files/data/"), "/")
		if rel == "" {
			return nil
		}
		h := *hdr
		h.Linkname = strings.TrimPrefix(h.Linkname, "files/data/")
		return x.Add(rel, &h, r, archive.IsSparse(hdr))
	})
	if err := errorsJoin(err, x.Close()); err != nil {
		t.Fatalf("verifying and restoring: %v", err)
	}
	compareTrees(t, src, out, skipped)
	gnuTar(t, path, src, skipped)
}

// gnuTar checks that the archive stays a plain tar for the tools people have: GNU tar
// restores the same tree, holes included, without echo-backup.
func gnuTar(t *testing.T, path, src string, skipped map[string]string) {
	t.Helper()
	if _, err := exec.LookPath("zstd"); err != nil {
		t.Log("no zstd command: the GNU tar check is not run")
		return
	}
	out := t.TempDir()
	cmd := exec.Command("tar", "--zstd", "-xpf", path, "-C", out, "--numeric-owner")
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("tar --zstd -xpf: %v\n%s", err, b)
	}
	compareTrees(t, src, filepath.Join(out, "files", "data"), skipped)
}

func errorsJoin(a, b error) error {
	if a != nil {
		return a
	}
	return b
}

// gen makes a random tree of what data folders hold.
type gen struct {
	r       *rand.Rand
	t       *testing.T
	files   []string // regular files made so far, for hard links
	skipped map[string]string
}

func (g *gen) tree(root string) {
	g.skipped = map[string]string{}
	g.mkdir(root)
	g.fill(root, "", 0)
	// One deep chain, below PATH_MAX as a whole.
	p := root
	for i := range 25 {
		p = filepath.Join(p, fmt.Sprintf("deep-%02d-%s", i, strings.Repeat("d", 80)))
		g.mkdir(p)
	}
	g.file(filepath.Join(p, "bottom"), 10)
	// Sockets, FIFOs: endpoints of programs, left out and named.
	fifo := filepath.Join(root, "run.fifo")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		g.t.Fatal(err)
	}
	g.skipped["run.fifo"] = "fifo"
	sock := filepath.Join(root, "echo.sock")
	l, err := net.Listen("unix", sock)
	if err != nil {
		g.t.Fatal(err)
	}
	l.(*net.UnixListener).SetUnlinkOnClose(false)
	l.Close()
	g.skipped["echo.sock"] = "socket"
	// Attributes last: writing into a folder changes its mtime.
	g.attrs(root)
}

func (g *gen) fill(dir, rel string, depth int) {
	for range 2 + g.r.IntN(6) {
		p := filepath.Join(dir, g.name())
		if _, err := os.Lstat(p); err == nil {
			continue
		}
		switch k := g.r.IntN(12); {
		case k < 2 && depth < 4:
			g.mkdir(p)
			g.fill(p, filepath.Join(rel, filepath.Base(p)), depth+1)
		case k < 6:
			g.file(p, g.r.IntN(300<<10))
		case k < 7:
			g.sparse(p)
		case k < 8 && len(g.files) > 0:
			if err := os.Link(g.files[g.r.IntN(len(g.files))], p); err != nil {
				g.t.Fatal(err)
			}
		case k < 10:
			g.symlink(p)
		default:
			g.file(p, 0)
		}
	}
}

// name is a file name of any bytes but '/' and NUL, of any length a file system takes.
func (g *gen) name() string {
	switch g.r.IntN(6) {
	case 0:
		return "caf\xe9-latin1-" + fmt.Sprint(g.r.IntN(1000))
	case 1:
		b := make([]byte, 1+g.r.IntN(20))
		for i := range b {
			for b[i] == 0 || b[i] == '/' || b[i] == '.' && i < 2 {
				b[i] = byte(g.r.IntN(256))
			}
		}
		return string(b)
	case 2:
		return strings.Repeat("n", 200+g.r.IntN(55))
	case 3:
		return "Ünïcödé ♫ " + fmt.Sprint(g.r.IntN(1000))
	}
	return fmt.Sprintf("f%d.jpg", g.r.IntN(100000))
}

func (g *gen) mkdir(p string) {
	if err := os.Mkdir(p, 0o755); err != nil {
		g.t.Fatal(err)
	}
}

func (g *gen) file(p string, size int) {
	b := make([]byte, size)
	for i := range b {
		b[i] = byte(g.r.IntN(256))
	}
	if err := os.WriteFile(p, b, 0o644); err != nil {
		g.t.Fatal(err)
	}
	g.files = append(g.files, p)
}

// sparse makes a file with holes: a few data runs at block-aligned offsets, maybe a hole at the end.
func (g *gen) sparse(p string) {
	f, err := os.Create(p)
	if err != nil {
		g.t.Fatal(err)
	}
	defer f.Close()
	size := int64(1+g.r.IntN(64)) << 20
	for range g.r.IntN(4) {
		chunk := make([]byte, 4096*(1+g.r.IntN(8)))
		for i := range chunk {
			chunk[i] = byte(1 + g.r.IntN(255))
		}
		if _, err := f.WriteAt(chunk, g.r.Int64N(size/4096)*4096); err != nil {
			g.t.Fatal(err)
		}
	}
	if err := f.Truncate(max(size, fileSize(g.t, f))); err != nil {
		g.t.Fatal(err)
	}
	g.files = append(g.files, p)
}

func fileSize(t *testing.T, f *os.File) int64 {
	st, err := f.Stat()
	if err != nil {
		t.Fatal(err)
	}
	return st.Size()
}

func (g *gen) symlink(p string) {
	targets := []string{"/music/library", "../../../outside", "dangling-" + fmt.Sprint(g.r.IntN(99)), ".", "/", "caf\xe9"}
	if len(g.files) > 0 {
		targets = append(targets, g.files[g.r.IntN(len(g.files))])
	}
	if err := os.Symlink(targets[g.r.IntN(len(targets))], p); err != nil {
		g.t.Fatal(err)
	}
}

// attrs gives every entry random owners, modes (setuid, setgid, sticky too) and mtimes,
// folders after what they hold.
func (g *gen) attrs(root string) {
	var dirs []string
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		uid, gid := g.r.IntN(70000), g.r.IntN(70000)
		mt := time.Unix(g.r.Int64N(4102444800), 0)
		switch {
		case d.Type()&fs.ModeSymlink != 0:
			return errorsJoin(os.Lchown(p, uid, gid), lutimes(p, mt))
		case d.Type()&(fs.ModeSocket|fs.ModeNamedPipe) != 0:
			return nil
		case d.IsDir():
			dirs = append(dirs, p)
			return nil
		}
		mode := fs.FileMode(g.r.IntN(0o1000)) | []fs.FileMode{0, fs.ModeSetuid, fs.ModeSetgid, fs.ModeSticky}[g.r.IntN(4)]
		return errorsJoin(errorsJoin(os.Chown(p, uid, gid), os.Chmod(p, mode)), os.Chtimes(p, mt, mt))
	})
	if err != nil {
		g.t.Fatal(err)
	}
	for i := len(dirs) - 1; i >= 0; i-- {
		p := dirs[i]
		mode := fs.FileMode(0o700|g.r.IntN(0o100)) | []fs.FileMode{0, fs.ModeSetgid, fs.ModeSticky}[g.r.IntN(3)]
		mt := time.Unix(g.r.Int64N(4102444800), 0)
		if err := errorsJoin(errorsJoin(os.Chown(p, g.r.IntN(70000), g.r.IntN(70000)), os.Chmod(p, mode)), os.Chtimes(p, mt, mt)); err != nil {
			g.t.Fatal(err)
		}
	}
}

func lutimes(p string, t time.Time) error {
	ts := []unix.Timespec{unix.NsecToTimespec(t.UnixNano()), unix.NsecToTimespec(t.UnixNano())}
	return unix.UtimesNanoAt(unix.AT_FDCWD, p, ts, unix.AT_SYMLINK_NOFOLLOW)
}

// entry is what the comparison looks at for one path.
type entry struct {
	kind, link, sum string
	mode            fs.FileMode
	uid, gid        uint32
	mtime           int64
	size            int64
	dense           bool // allocated as much as its size: no holes
	inode           uint64
}

func scan(t *testing.T, root string, skipped map[string]string) map[string]entry {
	t.Helper()
	out := map[string]entry{}
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, p)
		if _, skip := skipped[rel]; skip {
			return nil
		}
		info, err := os.Lstat(p)
		if err != nil {
			return err
		}
		st := info.Sys().(*syscall.Stat_t)
		e := entry{kind: info.Mode().Type().String(), mode: info.Mode(), uid: st.Uid, gid: st.Gid,
			mtime: info.ModTime().Unix(), inode: st.Ino}
		switch {
		case info.Mode()&fs.ModeSymlink != 0:
			e.link, err = os.Readlink(p)
		case info.Mode().IsRegular():
			e.size, e.dense = info.Size(), st.Blocks*512 >= info.Size()
			e.sum, err = sumFile(p)
		}
		out[rel] = e
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func sumFile(p string) (string, error) {
	f, err := os.Open(p)
	if err != nil {
		return "", err
	}
	defer f.Close()
	h := sha256.New()
	_, err = io.Copy(h, f)
	return hex.EncodeToString(h.Sum(nil)), err
}

func compareTrees(t *testing.T, src, out string, skipped map[string]string) {
	t.Helper()
	want, got := scan(t, src, skipped), scan(t, out, nil)
	for _, name := range []string{"run.fifo", "echo.sock"} {
		if _, ok := got[name]; ok && skipped[name] != "" {
			t.Errorf("%q was restored, but save leaves it out", name)
		}
	}
	for name, w := range want {
		g, ok := got[name]
		if !ok {
			t.Errorf("%q is missing after the restore", name)
			continue
		}
		if name == "." {
			continue // the folder itself: restore sets it from the archive's root entry
		}
		if w.dense {
			g.dense = true // a dense file may come back with holes where it held zeros
		}
		w.inode, g.inode = 0, 0
		if w != g {
			t.Errorf("%q differs:\n saved    %+v\n restored %+v", name, w, g)
		}
	}
	for name := range got {
		if _, ok := want[name]; !ok {
			t.Errorf("%q appeared in the restore", name)
		}
	}
	if a, b := linkGroups(want), linkGroups(got); a != b {
		t.Errorf("hard links differ:\n saved    %s\n restored %s", a, b)
	}
}

// linkGroups lists the names that share an inode, as a comparable string.
func linkGroups(tree map[string]entry) string {
	byInode := map[uint64][]string{}
	for name, e := range tree {
		if e.kind == "-" || e.kind == "----------" || e.mode.IsRegular() {
			byInode[e.inode] = append(byInode[e.inode], name)
		}
	}
	var groups []string
	for _, names := range byInode {
		if len(names) > 1 {
			slices.Sort(names)
			groups = append(groups, strings.Join(names, " = "))
		}
	}
	slices.Sort(groups)
	return fmt.Sprintf("%q", groups)
}
