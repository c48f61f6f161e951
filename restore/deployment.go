package restore

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"

	"github.com/echo-backup/echo-backup/archive"
	"github.com/echo-backup/echo-backup/compose"
)

// deploymentPrefix is where a save keeps the compose and env files (backup.saveDeployment).
const deploymentPrefix = "deployment/"

// maxDeploymentFile bounds what is held in memory per file: compose and env files are small,
// and a member far larger than that is not one.
const maxDeploymentFile = 16 << 20

// Walker hands every member of a backup to fn, checking the backup as it goes; an error from
// fn stops it and comes back wrapped. An archive file's is ArchiveMembers; another input (a
// repository snapshot) brings its own.
type Walker func(fn func(hdr *tar.Header, r io.Reader) error) error

// ArchiveMembers walks an archive file, in the folder form (format 2) or the stream form
// (format 3).
func ArchiveMembers(path string) Walker {
	return func(fn func(hdr *tar.Header, r io.Reader) error) error {
		if _, err := archive.Walk(path, fn); err != nil {
			return fmt.Errorf("reading %s: %w", path, err)
		}
		return nil
	}
}

// DeploymentOptions say how WriteDeployment writes a backup's deployment files.
type DeploymentOptions struct {
	DryRun bool
	Log    func(string) // one line per file; nil: nothing
	// Project is the name the restored project is to have (the backup's, or the one the user
	// gave). When the folder, as compose would open it without -p and -f, comes out under
	// another name or with other compose files (FolderProject), COMPOSE_PROJECT_NAME and
	// COMPOSE_FILE are added to its .env, so that later commands there (a save: the same
	// history) find the same project. "": not checked.
	Project string
	// FolderProject loads the compose project in dir as compose does without -p and -f, and
	// returns its name and compose files.
	FolderProject func(ctx context.Context, dir string) (name string, configFiles []string, err error)
}

// deploymentFile is one file WriteDeployment writes.
type deploymentFile struct {
	name string // relative to the folder, slash-separated
	mode fs.FileMode
	data []byte
	hdr  *tar.Header
	keep bool // already there, identical
	// pinned: COMPOSE_FILE or COMPOSE_PROJECT_NAME was added to saved (the .env as saved),
	// so it is not the saved file (nor its mtime)
	pinned bool
	saved  []byte
}

// WriteDeployment writes the compose, env and other deployment files of the backup m into
// dir, before the project there is opened: a restore onto a new server. It reads them with
// walk (stopping early once it has every one m lists), checks every name (relative, no "..",
// nothing through a link) and every file already in dir (identical: kept; different: an
// error naming it) before it writes anything, never writes over a file, and on a dry run
// writes nothing. It returns the files written (or that would be), relative to dir.
func WriteDeployment(ctx context.Context, m *archive.Manifest, walk Walker, dir string, o DeploymentOptions) ([]string, error) {
	if o.Log == nil {
		o.Log = func(string) {}
	}
	files, err := readDeployment(m, walk)
	if err != nil {
		return nil, fmt.Errorf("reading the deployment files of the backup: %w", err)
	}
	if len(files) == 0 {
		return nil, &compose.UserError{Err: errors.New("the backup holds no compose file (no deployment/ members): " +
			"put the compose file here, then restore")}
	}
	if files, err = pinProject(ctx, files, dir, m, o); err != nil {
		return nil, err
	}
	if err := checkExisting(files, dir); err != nil {
		return nil, err
	}
	var names []string
	for _, f := range files {
		if f.keep {
			o.Log(fmt.Sprintf("%s is already here, identical to the backup's: kept", displayName(f.name)))
			continue
		}
		names = append(names, f.name)
		if o.DryRun {
			o.Log(fmt.Sprintf("would write %s from the backup (mode %04o)", displayName(f.name), f.mode))
		}
	}
	if o.DryRun {
		return names, nil
	}
	if err := writeFiles(files, dir, o.Log); err != nil {
		return nil, fmt.Errorf("writing the deployment files of the backup into %s: %w", dir, err)
	}
	return names, nil
}

// readDeployment collects the deployment members. With the manifest's member list (an
// archive file's manifest, a stream file's trailer) it checks each one's sha256 itself and
// stops once it has them all; without it, it reads to the end, where walk has checked them.
func readDeployment(m *archive.Manifest, walk Walker) ([]*deploymentFile, error) {
	want := map[string]archive.Member{}
	for _, mem := range m.Members {
		if strings.HasPrefix(mem.Name, deploymentPrefix) && mem.Type == archive.TypeFile {
			want[mem.Name] = mem
		}
	}
	errEnough := errors.New("every deployment file read")
	var files []*deploymentFile
	err := walk(func(hdr *tar.Header, r io.Reader) error {
		// Checked first: a stream's dump parts come from another goroutine.
		if !strings.HasPrefix(hdr.Name, deploymentPrefix) {
			return nil
		}
		f, err := readDeploymentFile(hdr, r)
		if err != nil || f == nil {
			return err
		}
		if mem, ok := want[hdr.Name]; ok {
			if sum := sha256.Sum256(f.data); hex.EncodeToString(sum[:]) != mem.SHA256 {
				return fmt.Errorf("%s: content sha256 differs from the manifest's", hdr.Name)
			}
		} else if len(want) > 0 {
			return fmt.Errorf("%s is not in the manifest", hdr.Name)
		}
		files = append(files, f)
		if len(want) > 0 && len(files) == len(want) {
			return errEnough
		}
		return nil
	})
	if err != nil && !errors.Is(err, errEnough) {
		return nil, err
	}
	if len(files) < len(want) {
		return nil, fmt.Errorf("the manifest lists %d deployment files, the backup holds %d", len(want), len(files))
	}
	sort.Slice(files, func(i, j int) bool { return files[i].name < files[j].name })
	return files, nil
}

// readDeploymentFile reads one member; nil for a folder entry.
func readDeploymentFile(hdr *tar.Header, r io.Reader) (*deploymentFile, error) {
	name := strings.TrimPrefix(hdr.Name, deploymentPrefix)
	if hdr.Typeflag == tar.TypeDir {
		return nil, nil
	}
	if err := safeName(name); err != nil {
		return nil, err
	}
	if hdr.Typeflag != tar.TypeReg {
		return nil, fmt.Errorf("%s is not a regular file: not written", hdr.Name)
	}
	if hdr.Size > maxDeploymentFile {
		return nil, fmt.Errorf("%s is %d bytes, more than a compose or env file has", hdr.Name, hdr.Size)
	}
	data, err := io.ReadAll(io.LimitReader(r, maxDeploymentFile+1))
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", hdr.Name, err)
	}
	if int64(len(data)) != hdr.Size {
		return nil, fmt.Errorf("%s: %d bytes, its header says %d", hdr.Name, len(data), hdr.Size)
	}
	return &deploymentFile{name: name, mode: deploymentMode(name, hdr.FileInfo().Mode()), data: data, hdr: hdr}, nil
}

// safeName refuses a name that could land outside the folder: absolute, with "..", or unclean.
func safeName(name string) error {
	if name == "" || strings.HasPrefix(name, "/") || strings.ContainsRune(name, 0) || strings.Contains(name, `\`) {
		return fmt.Errorf("deployment file %q has an unsafe name: not written", name)
	}
	for _, elem := range strings.Split(name, "/") {
		if elem == ".." || elem == "." || elem == "" {
			return fmt.Errorf("deployment file %q has an unsafe name: not written", name)
		}
	}
	if !filepath.IsLocal(filepath.FromSlash(name)) {
		return fmt.Errorf("deployment file %q has an unsafe name: not written", name)
	}
	return nil
}

// deploymentMode is the saved permission bits, without setuid and the like; an env file
// (.env, *.env) holds secrets, so nobody but its owner gets to read it, whatever it was.
func deploymentMode(name string, saved fs.FileMode) fs.FileMode {
	perm := saved.Perm()
	if base := path.Base(name); base == ".env" || strings.HasSuffix(base, ".env") {
		perm &= 0o600
	}
	return perm
}

// displayName is name as the user sees it; a file that was outside the project folder on the
// old server (backup.addDeploymentFile keeps it under external/) is said to be so.
func displayName(name string) string {
	if strings.HasPrefix(name, "external/") {
		return "./" + name + " (outside the project folder on the old server: the compose files may name it by its old path)"
	}
	return "./" + name
}

// pinLines is what pinProject adds to .env: compose reads both variables from there.
func pinLines(vars [][2]string) string {
	var b strings.Builder
	b.WriteString("# added by docker echobackup restore, so that this folder opens as the project in the backup\n")
	for _, kv := range vars {
		b.WriteString(kv[0] + "=" + kv[1] + "\n")
	}
	return b.String()
}

// pinProject loads the files as compose would in dir (in a scratch folder of the same name,
// so that nothing is written yet and a dry run says the same). If compose would not pick the
// backup's compose files by itself (say -f compose.yaml -f compose.prod.yaml), .env gets
// COMPOSE_FILE; if the project would come out under another name than o.Project (a name
// that came from the old folder's name, or -p), COMPOSE_PROJECT_NAME. A .env is made if the
// backup has none.
func pinProject(ctx context.Context, files []*deploymentFile, dir string, m *archive.Manifest, o DeploymentOptions) ([]*deploymentFile, error) {
	if o.Project == "" || o.FolderProject == nil {
		return files, nil
	}
	scratch, err := os.MkdirTemp("", "echobackup-deployment-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(scratch)
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, err
	}
	like := filepath.Join(scratch, filepath.Base(abs))
	load := func() (string, []string, error) {
		if err := os.RemoveAll(like); err != nil {
			return "", nil, err
		}
		if err := writeFiles(files, like, func(string) {}); err != nil {
			return "", nil, err
		}
		return o.FolderProject(ctx, like)
	}
	var pins [][2]string
	want := composeFiles(m)
	name, got, err := load()
	if want != "" && (err != nil || relFiles(like, got) != want) {
		pins = append(pins, [2]string{"COMPOSE_FILE", want})
		files = withPins(files, pins)
		name, _, err = load()
	}
	if err != nil {
		return nil, fmt.Errorf("loading the compose files of the backup: %w", err)
	}
	if name != o.Project {
		pins = append(pins, [2]string{"COMPOSE_PROJECT_NAME", o.Project})
	}
	if len(pins) > 0 {
		var set []string
		for _, kv := range pins {
			set = append(set, kv[0]+"="+kv[1])
		}
		o.Log(fmt.Sprintf("%s alone opens as project %q by compose's defaults: .env gets %s", abs, name, strings.Join(set, " ")))
	}
	return withPins(files, pins), nil
}

// composeFiles are the backup's compose files as COMPOSE_FILE would list them, relative to
// the project folder; "" when one was outside it (compose then needs -f anyway).
func composeFiles(m *archive.Manifest) string {
	var rel []string
	for _, f := range m.Project.ConfigFiles {
		r, err := filepath.Rel(m.Project.WorkingDir, f)
		if err != nil || !filepath.IsLocal(r) {
			return ""
		}
		rel = append(rel, filepath.ToSlash(r))
	}
	return strings.Join(rel, string(os.PathListSeparator))
}

func relFiles(dir string, files []string) string {
	var rel []string
	for _, f := range files {
		r, _ := filepath.Rel(dir, f)
		rel = append(rel, filepath.ToSlash(r))
	}
	return strings.Join(rel, string(os.PathListSeparator))
}

// withPins returns files with pins added to the saved .env (or a new one); no pins: files.
func withPins(files []*deploymentFile, pins [][2]string) []*deploymentFile {
	if len(pins) == 0 {
		return files
	}
	var out []*deploymentFile
	var env *deploymentFile
	for _, f := range files {
		if f.name == ".env" {
			saved := f.data
			if f.pinned {
				saved = f.saved
			}
			c := *f
			c.saved, c.pinned = saved, true
			c.data = append([]byte(nil), saved...)
			if len(c.data) > 0 && !bytes.HasSuffix(c.data, []byte("\n")) {
				c.data = append(c.data, '\n')
			}
			c.data = append(c.data, pinLines(pins)...)
			env = &c
			out = append(out, env)
			continue
		}
		out = append(out, f)
	}
	if env == nil {
		out = append(out, &deploymentFile{name: ".env", mode: 0o600, data: []byte(pinLines(pins)), pinned: true})
	}
	return out
}

// checkExisting marks the files already in dir with the same content, and refuses any other
// entry in the way (a different file, a folder, a link), naming it. Names resolve inside dir
// only: a link that leads out of it is refused.
func checkExisting(files []*deploymentFile, dir string) error {
	root, err := os.OpenRoot(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	defer root.Close()
	for _, f := range files {
		st, err := root.Lstat(filepath.FromSlash(f.name))
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		where := filepath.Join(dir, filepath.FromSlash(f.name))
		if err != nil {
			return &compose.UserError{Err: fmt.Errorf("checking %s before writing the backup's copy: %w", where, err)}
		}
		if !st.Mode().IsRegular() {
			return &compose.UserError{Err: fmt.Errorf("%s is in the way of the backup's %s (%s): move it away first", where, f.name, st.Mode().Type())}
		}
		have, err := root.ReadFile(filepath.FromSlash(f.name))
		if err != nil {
			return err
		}
		if !bytes.Equal(have, f.data) {
			return &compose.UserError{Err: fmt.Errorf("%s already exists and differs from the backup's: nothing was written; "+
				"move it away, or restore into an empty folder (--project-directory DIR)", where)}
		}
		f.keep = true
	}
	return nil
}

// writeFiles writes every file not marked keep into dir, through os.Root (no name leaves dir,
// not even through a link) and with O_EXCL (never over a file). On an error it removes what
// it wrote.
func writeFiles(files []*deploymentFile, dir string, log func(string)) (err error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	root, err := os.OpenRoot(dir)
	if err != nil {
		return err
	}
	defer root.Close()
	var written []string
	defer func() {
		if err != nil {
			for _, name := range written {
				_ = root.Remove(name)
			}
		}
	}()
	for _, f := range files {
		if f.keep {
			continue
		}
		name := filepath.FromSlash(f.name)
		if parent := filepath.Dir(name); parent != "." {
			if err := root.MkdirAll(parent, 0o755); err != nil {
				return err
			}
		}
		if err := writeFile(root, name, f); err != nil {
			return err
		}
		written = append(written, name)
		log(fmt.Sprintf("wrote %s from the backup (mode %04o)", displayName(f.name), f.mode))
	}
	return nil
}

func writeFile(root *os.Root, name string, f *deploymentFile) error {
	out, err := root.OpenFile(name, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	_, err = out.Write(f.data)
	if err == nil {
		err = out.Chmod(f.mode) // exactly as planned, whatever the umask
	}
	if err == nil {
		err = out.Sync()
	}
	if cerr := out.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		_ = root.Remove(name)
		return err
	}
	if f.hdr != nil && !f.hdr.ModTime.IsZero() && !f.pinned {
		_ = root.Chtimes(name, f.hdr.ModTime, f.hdr.ModTime)
	}
	return nil
}

// DescribeNewServer is the plan of a restore onto a new server, before its deployment files
// are written (so before the project can be opened): the files, then what the backup holds.
func DescribeNewServer(m *archive.Manifest, from, dir string, files []string) string {
	var b strings.Builder
	abs, _ := filepath.Abs(dir)
	fmt.Fprintf(&b, "Restore onto a new server from %s, into %s:\n", from, abs)
	for _, f := range files {
		fmt.Fprintf(&b, "  - %s is written from the backup\n", displayName(f))
	}
	fmt.Fprintf(&b, "  - then project %q is opened from them and restored as usual (staged, checked, then swapped in):", m.Project.Name)
	if m.Database != nil {
		fmt.Fprintf(&b, " database %q,", m.Database.Name)
	}
	for _, s := range dataSources(m) {
		where := s.Path
		if rel, err := filepath.Rel(m.Project.WorkingDir, s.Path); s.Kind == archive.KindBind && err == nil && filepath.IsLocal(rel) {
			where = "./" + filepath.ToSlash(rel)
		}
		fmt.Fprintf(&b, " %s %s,", s.Kind, where)
	}
	return strings.TrimSuffix(b.String(), ",") + "\n"
}

// RemoveDeployment takes away the files WriteDeployment wrote into dir, when the restore
// that needed them failed or was cancelled: a new server is left as it was.
func RemoveDeployment(dir string, names []string) error {
	root, err := os.OpenRoot(dir)
	if err != nil {
		return err
	}
	defer root.Close()
	var errs []error
	for _, name := range names {
		if err := root.Remove(filepath.FromSlash(name)); err != nil && !errors.Is(err, fs.ErrNotExist) {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}
