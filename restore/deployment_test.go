package restore

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/echo-backup/echo-backup/archive"
)

// member is one tar member for a walker made in memory.
type member struct {
	name string
	mode int64
	data string
	typ  byte
	link string
}

func memWalker(members ...member) Walker {
	return func(fn func(*tar.Header, io.Reader) error) error {
		for _, m := range members {
			typ := m.typ
			if typ == 0 {
				typ = tar.TypeReg
			}
			hdr := &tar.Header{Name: m.name, Mode: m.mode, Size: int64(len(m.data)), Typeflag: typ, Linkname: m.link,
				ModTime: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)}
			if typ != tar.TypeReg {
				hdr.Size = 0
			}
			if err := fn(hdr, strings.NewReader(m.data)); err != nil {
				return err
			}
		}
		return nil
	}
}

var (
	composeYAML = member{name: "deployment/compose.yaml", mode: 0o644, data: "services:\n  db:\n    image: postgres\n"}
	dotEnv      = member{name: "deployment/.env", mode: 0o644, data: "POSTGRES_PASSWORD=secret\n"}
	envFile     = member{name: "deployment/conf/db.env", mode: 0o640, data: "A=1\n"}
)

func manifestOf() *archive.Manifest {
	return &archive.Manifest{Project: archive.Project{Name: "echo", WorkingDir: "/srv/echo",
		ConfigFiles: []string{"/srv/echo/compose.yaml"}}}
}

func collect(lines *[]string) func(string) { return func(s string) { *lines = append(*lines, s) } }

func TestWriteDeploymentWritesFilesWithModes(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "new")
	var log []string
	got, err := WriteDeployment(context.Background(), manifestOf(), memWalker(composeYAML, dotEnv, envFile,
		member{name: "files/data/setup.json", mode: 0o644, data: "{}"}), dir, DeploymentOptions{Log: collect(&log)})
	if err != nil {
		t.Fatal(err)
	}
	if want := ".env,compose.yaml,conf/db.env"; strings.Join(got, ",") != want {
		t.Errorf("written %v, want %s", got, want)
	}
	for name, want := range map[string]os.FileMode{"compose.yaml": 0o644, ".env": 0o600, "conf/db.env": 0o600} {
		st, err := os.Stat(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		if st.Mode().Perm() != want {
			t.Errorf("%s: mode %04o, want %04o", name, st.Mode().Perm(), want)
		}
	}
	if b, _ := os.ReadFile(filepath.Join(dir, "compose.yaml")); string(b) != composeYAML.data {
		t.Errorf("compose.yaml holds %q", b)
	}
	if _, err := os.Stat(filepath.Join(dir, "files")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("a data member was written as a deployment file: %v", err)
	}
	if len(log) != 3 || !strings.Contains(log[0], "wrote ./.env") {
		t.Errorf("log: %q", log)
	}
}

func TestWriteDeploymentRefusesUnsafeNames(t *testing.T) {
	for _, m := range []member{
		{name: "deployment/../evil", mode: 0o644, data: "x"},
		{name: "deployment/a/../../evil", mode: 0o644, data: "x"},
		{name: "deployment//etc/evil", mode: 0o644, data: "x"},
		{name: "deployment/./evil", mode: 0o644, data: "x"},
		{name: "deployment/link", typ: tar.TypeSymlink, link: "/etc/passwd"},
	} {
		t.Run(m.name, func(t *testing.T) {
			root := t.TempDir()
			dir := filepath.Join(root, "new")
			_, err := WriteDeployment(context.Background(), manifestOf(), memWalker(composeYAML, m), dir, DeploymentOptions{})
			if err == nil {
				t.Fatal("an unsafe member was accepted")
			}
			if entries, _ := os.ReadDir(root); len(entries) != 0 {
				t.Errorf("something was written: %v", entries)
			}
		})
	}
}

// A folder inside the target that is a link to elsewhere: nothing is written through it.
func TestWriteDeploymentRefusesLinkEscape(t *testing.T) {
	dir, outside := t.TempDir(), t.TempDir()
	if err := os.Symlink(outside, filepath.Join(dir, "conf")); err != nil {
		t.Fatal(err)
	}
	_, err := WriteDeployment(context.Background(), manifestOf(), memWalker(composeYAML, envFile), dir, DeploymentOptions{})
	if err == nil {
		t.Fatal("a file was written through a link that leaves the folder")
	}
	if entries, _ := os.ReadDir(outside); len(entries) != 0 {
		t.Errorf("written outside the folder: %v", entries)
	}
	if _, err := os.Stat(filepath.Join(dir, "compose.yaml")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("compose.yaml is left behind after the failure: %v", err)
	}
}

func TestWriteDeploymentExistingFiles(t *testing.T) {
	dir := t.TempDir()
	write := func(name, data string) {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	// Identical: kept, not written, not in the list.
	write("compose.yaml", composeYAML.data)
	got, err := WriteDeployment(context.Background(), manifestOf(), memWalker(composeYAML, dotEnv), dir, DeploymentOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(got, ",") != ".env" {
		t.Errorf("written %v, want only .env", got)
	}
	// Different: an error naming it, and nothing written.
	dir = t.TempDir()
	write(".env", "POSTGRES_PASSWORD=mine\n")
	_, err = WriteDeployment(context.Background(), manifestOf(), memWalker(composeYAML, dotEnv), dir, DeploymentOptions{})
	if err == nil || !strings.Contains(err.Error(), filepath.Join(dir, ".env")) || !strings.Contains(err.Error(), "differs") {
		t.Fatalf("err = %v, want one naming .env as different", err)
	}
	if _, err := os.Stat(filepath.Join(dir, "compose.yaml")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("compose.yaml was written although .env is in the way: %v", err)
	}
	if b, _ := os.ReadFile(filepath.Join(dir, ".env")); string(b) != "POSTGRES_PASSWORD=mine\n" {
		t.Errorf(".env was changed: %q", b)
	}
	// A link where a file would go: refused, its target untouched.
	dir = t.TempDir()
	target := filepath.Join(t.TempDir(), "target")
	if err := os.Symlink(target, filepath.Join(dir, "compose.yaml")); err != nil {
		t.Fatal(err)
	}
	if _, err := WriteDeployment(context.Background(), manifestOf(), memWalker(composeYAML), dir, DeploymentOptions{}); err == nil {
		t.Fatal("a file was written over a link")
	}
	if _, err := os.Lstat(target); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("written through the link: %v", err)
	}
}

func TestWriteDeploymentDryRunWritesNothing(t *testing.T) {
	root := t.TempDir()
	dir := filepath.Join(root, "new")
	var log []string
	folder := func(ctx context.Context, d string) (string, []string, error) {
		return filepath.Base(d), []string{filepath.Join(d, "compose.yaml")}, nil
	}
	got, err := WriteDeployment(context.Background(), manifestOf(), memWalker(composeYAML, dotEnv), dir,
		DeploymentOptions{DryRun: true, Log: collect(&log), Project: "echo", FolderProject: folder})
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(got, ",") != ".env,compose.yaml" {
		t.Errorf("would write %v", got)
	}
	if entries, _ := os.ReadDir(root); len(entries) != 0 {
		t.Errorf("a dry run wrote %v", entries)
	}
	if !strings.Contains(strings.Join(log, "\n"), "would write ./compose.yaml") {
		t.Errorf("log: %q", log)
	}
}

// The folder would open under its own name: .env gets the backup's name, and a second run
// finds the same .env identical.
func TestWriteDeploymentPinsProjectName(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "newfolder")
	var loaded []string
	folder := func(ctx context.Context, d string) (string, []string, error) {
		loaded = append(loaded, d)
		b, _ := os.ReadFile(filepath.Join(d, ".env"))
		name := filepath.Base(d)
		if i := bytes.Index(b, []byte("COMPOSE_PROJECT_NAME=")); i >= 0 {
			name = strings.TrimSpace(string(b[i+len("COMPOSE_PROJECT_NAME="):]))
		}
		return name, []string{filepath.Join(d, "compose.yaml")}, nil
	}
	o := DeploymentOptions{Project: "echo", FolderProject: folder}
	if _, err := WriteDeployment(context.Background(), manifestOf(), memWalker(composeYAML, dotEnv), dir, o); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(filepath.Join(dir, ".env"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(string(b), dotEnv.data) || !strings.HasSuffix(string(b), "\nCOMPOSE_PROJECT_NAME=echo\n") {
		t.Errorf(".env: %q", b)
	}
	if len(loaded) == 0 || filepath.Base(loaded[0]) != "newfolder" || strings.HasPrefix(loaded[0], dir) {
		t.Errorf("the name was not read from a scratch folder of the same name: %v", loaded)
	}
	got, err := WriteDeployment(context.Background(), manifestOf(), memWalker(composeYAML, dotEnv), dir, o)
	if err != nil || len(got) != 0 {
		t.Errorf("second run: %v, %v; want nothing written and no error", got, err)
	}
}

// Two compose files that compose's discovery would not pick by itself: COMPOSE_FILE too, in a
// .env made for it when the backup has none.
func TestWriteDeploymentPinsComposeFiles(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "echo")
	m := manifestOf()
	m.Project.ConfigFiles = []string{"/srv/echo/compose.yaml", "/srv/echo/compose.prod.yaml"}
	prod := member{name: "deployment/compose.prod.yaml", mode: 0o644, data: "services: {}\n"}
	folder := func(ctx context.Context, d string) (string, []string, error) {
		b, _ := os.ReadFile(filepath.Join(d, ".env"))
		files := []string{filepath.Join(d, "compose.yaml")}
		if bytes.Contains(b, []byte("COMPOSE_FILE=compose.yaml:compose.prod.yaml\n")) {
			files = append(files, filepath.Join(d, "compose.prod.yaml"))
		}
		return filepath.Base(d), files, nil
	}
	if _, err := WriteDeployment(context.Background(), m, memWalker(composeYAML, prod), dir,
		DeploymentOptions{Project: "echo", FolderProject: folder}); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(filepath.Join(dir, ".env"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(b), "\nCOMPOSE_FILE=compose.yaml:compose.prod.yaml\n") || strings.Contains(string(b), "COMPOSE_PROJECT_NAME") {
		t.Errorf(".env: %q", b)
	}
	if st, _ := os.Stat(filepath.Join(dir, ".env")); st == nil || st.Mode().Perm() != 0o600 {
		t.Errorf(".env mode: %v", st)
	}
}

// The manifest's checksums are checked: a member that differs is not written.
func TestWriteDeploymentChecksManifest(t *testing.T) {
	m := manifestOf()
	m.Members = []archive.Member{{Name: composeYAML.name, Type: archive.TypeFile, SHA256: strings.Repeat("0", 64)}}
	dir := filepath.Join(t.TempDir(), "new")
	if _, err := WriteDeployment(context.Background(), m, memWalker(composeYAML), dir, DeploymentOptions{}); err == nil || !strings.Contains(err.Error(), "sha256") {
		t.Fatalf("err = %v, want a checksum error", err)
	}
	if _, err := os.Stat(dir); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("written despite the bad checksum: %v", err)
	}
}

// Both archive forms, written by the archive package and read back through ArchiveMembers.
func TestWriteDeploymentFromArchiveFiles(t *testing.T) {
	for _, stream := range []bool{false, true} {
		name := map[bool]string{false: "folder form", true: "stream form"}[stream]
		t.Run(name, func(t *testing.T) {
			path := writeTestArchive(t, stream)
			m, err := archive.ReadManifest(path)
			if err != nil {
				t.Fatal(err)
			}
			dir := filepath.Join(t.TempDir(), "new")
			got, err := WriteDeployment(context.Background(), m, ArchiveMembers(path), dir, DeploymentOptions{})
			if err != nil {
				t.Fatal(err)
			}
			if strings.Join(got, ",") != ".env,compose.yaml" {
				t.Errorf("written %v", got)
			}
			if b, _ := os.ReadFile(filepath.Join(dir, ".env")); string(b) != dotEnv.data {
				t.Errorf(".env holds %q", b)
			}
		})
	}
}

func writeTestArchive(t *testing.T, stream bool) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "echo-20260101T000000Z.tar.zst")
	m := manifestOf()
	m.Sources = []archive.Source{{Name: "data", Kind: archive.KindBind, Path: "/srv/echo/data", Member: "files/data/"},
		{Name: "deployment", Kind: archive.KindDeployment, Path: "/srv/echo", Member: "deployment/"}}
	var w *archive.Writer
	var err error
	var f *os.File
	if stream {
		if f, err = os.Create(path); err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		w, err = archive.NewStream(f, m, archive.Options{})
	} else {
		w, err = archive.Create(path, archive.Options{})
	}
	if err != nil {
		t.Fatal(err)
	}
	for _, mem := range []member{{name: "files/data/", mode: 0o755, typ: tar.TypeDir},
		{name: "files/data/setup.json", mode: 0o644, data: "{}"}, composeYAML, dotEnv} {
		typ := mem.typ
		if typ == 0 {
			typ = tar.TypeReg
		}
		hdr := &tar.Header{Name: mem.name, Mode: mem.mode, Size: int64(len(mem.data)), Typeflag: typ, ModTime: time.Now()}
		if typ == tar.TypeDir {
			hdr.Size = 0
		}
		if err := w.Add(hdr, strings.NewReader(mem.data)); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Commit(m); err != nil {
		t.Fatal(err)
	}
	if !stream {
		return w.Path()
	}
	return path
}
