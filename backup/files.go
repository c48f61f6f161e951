package backup

import (
	"archive/tar"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"strings"

	"github.com/moby/moby/api/types/mount"

	"github.com/echo-backup/echo-backup/archive"
	"github.com/echo-backup/echo-backup/compose"
	"github.com/echo-backup/echo-backup/engine"
	"github.com/echo-backup/echo-backup/files"
	"github.com/echo-backup/echo-backup/progress"
)

// saveFiles writes every data folder and volume, then the deployment files. With Pause the app
// is frozen only for as long as its files take.
func saveFiles(ctx context.Context, w *archive.Writer, o SaveOptions, m *archive.Manifest, sources []archive.Source) (err error) {
	if o.Pause {
		resume, perr := compose.PauseApps(ctx, o.API, o.Plan)
		defer func() { err = errors.Join(err, resume()) }()
		if perr != nil {
			return perr
		}
	}
	for _, src := range sources {
		task := o.Progress.Task(SourceLabel(o.Plan.WorkingDir, src), "Saving", sourceSize(o.Plan, src))
		err := saveSource(ctx, countedSink{w, task}, o, src)
		task.End("Saved", err)
		if err != nil {
			return fmt.Errorf("saving %s %s: %w", src.Kind, src.Path, err)
		}
		m.Sources = append(m.Sources, src)
	}
	dep, err := saveDeployment(w, o.Plan)
	if err != nil {
		return fmt.Errorf("saving the compose files: %w", err)
	}
	m.Sources = append(m.Sources, dep)
	return nil
}

// savedSources are the data sources that exist, the ones a save records.
func savedSources(o SaveOptions) []archive.Source {
	var out []archive.Source
	for _, src := range DataSources(o.Plan) {
		if !sourceExists(o.Plan, src) {
			// Not recorded: a restore must leave alone what the backup knows nothing about.
			o.Warn(fmt.Sprintf("%s %s does not exist: nothing to save there", src.Kind, src.Path))
			continue
		}
		out = append(out, src)
	}
	return out
}

// DataSources are the plan's folders and volumes saved as files, each once even when several
// services mount it, under a member prefix named after the folder or the volume's compose key.
func DataSources(plan *compose.Plan) []archive.Source {
	var out []archive.Source
	seen := map[string]bool{}
	for _, it := range plan.Items {
		if !it.Backup || it.Role != compose.RoleData || seen[string(it.Kind)+":"+it.Source] {
			continue
		}
		seen[string(it.Kind)+":"+it.Source] = true
		name := sourceName(plan, it)
		for taken := name; seen["name:"+taken]; taken = name + "-" + it.Service {
			name = taken + "-" + it.Service
		}
		seen["name:"+name] = true
		out = append(out, archive.Source{Name: name, Kind: string(it.Kind), Path: it.Source, Target: it.Target,
			Member: "files/" + name + "/"})
	}
	return out
}

// sourceExists uses discovery's answer; on a remote engine a bind folder cannot be seen from
// here, and the helper's read fails if it is missing.
func sourceExists(plan *compose.Plan, src archive.Source) bool {
	for _, it := range plan.Items {
		if string(it.Kind) == src.Kind && it.Source == src.Path {
			return it.Exists || (it.Kind == compose.KindBind && !it.Inspected)
		}
	}
	return false
}

func sourceName(plan *compose.Plan, it compose.Item) string {
	if it.Kind == compose.KindVolume {
		return it.Key
	}
	if rel, err := filepath.Rel(plan.WorkingDir, it.Source); err == nil && !strings.HasPrefix(rel, "..") && rel != "." {
		return strings.ReplaceAll(filepath.ToSlash(rel), "/", "_")
	}
	return strings.Trim(strings.ReplaceAll(it.Source, "/", "_"), "_")
}

// saveSource reads a bind folder straight from the disk only as root: Echo keeps files such as
// secrets.env at 0600 for uid 1001, which another user could not read. Otherwise, and for
// volumes, the engine reads it.
func saveSource(ctx context.Context, w files.Sink, o SaveOptions, src archive.Source) error {
	abs, _ := filepath.Abs(o.Dir)
	from, sub := o.readFrom(src)
	if src.Kind == "bind" && o.LocalEngine && os.Geteuid() == 0 {
		return files.ReadDir(ctx, from, src.Member, []string{abs}, w)
	}
	var skip []string
	if rel, err := filepath.Rel(src.Path, abs); err == nil && src.Kind == "bind" && !strings.HasPrefix(rel, "..") {
		skip = append(skip, filepath.ToSlash(rel))
	}
	return saveThroughHelper(ctx, w, o, src, from, sub, skip)
}

// saveThroughHelper reads a volume, or a folder on a remote engine's host, through a container
// that is created but never started.
// It mounts from (a volume name or a host folder) and reads sub below it.
func saveThroughHelper(ctx context.Context, w files.Sink, o SaveOptions, src archive.Source, from, sub string, skip []string) error {
	mt := mount.Mount{Type: mount.TypeVolume, Source: from, Target: "/backup-source", ReadOnly: true}
	if src.Kind == "bind" {
		mt.Type = mount.TypeBind
	}
	h, err := engine.CreateHelper(ctx, o.API, engine.HelperOptions{Project: o.Plan.Name,
		Image: o.Plan.Database.Image, Mounts: []mount.Mount{mt}, Purpose: "read"})
	if err != nil {
		return err
	}
	defer h.Remove()
	rc, err := h.Read(ctx, path.Join(mt.Target, sub))
	if err != nil {
		return err
	}
	defer rc.Close()
	return files.ReadTar(ctx, rc, src.Member, skip, w)
}

// saveDeployment keeps the compose and env files, so a bare server can be rebuilt from the archive.
func saveDeployment(w *archive.Writer, plan *compose.Plan) (archive.Source, error) {
	src := deploymentSource(plan)
	for _, p := range append(append([]string{}, plan.ConfigFiles...), plan.EnvFiles...) {
		if err := addDeploymentFile(w, plan.WorkingDir, p); err != nil {
			return src, err
		}
	}
	return src, nil
}

func deploymentSource(plan *compose.Plan) archive.Source {
	return archive.Source{Name: "deployment", Kind: archive.KindDeployment, Path: plan.WorkingDir, Member: "deployment/"}
}

func addDeploymentFile(w *archive.Writer, workDir, p string) error {
	rel, err := filepath.Rel(workDir, p)
	if err != nil || strings.HasPrefix(rel, "..") {
		rel = filepath.Join("external", filepath.Base(p))
	}
	f, err := os.Open(p)
	if err != nil {
		return err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return err
	}
	hdr, err := tar.FileInfoHeader(files.NumericOwner(st), "")
	if err != nil {
		return err
	}
	hdr.Name, hdr.Uname, hdr.Gname = "deployment/"+filepath.ToSlash(rel), "", ""
	return w.Add(hdr, io.Reader(f))
}

// SourceLabel names a folder or volume in progress rows: "folder ./data", "volume echo_db".
func SourceLabel(workDir string, src archive.Source) string {
	if src.Kind != "bind" {
		return src.Kind + " " + src.Path
	}
	if rel, err := filepath.Rel(workDir, src.Path); err == nil && !strings.HasPrefix(rel, "..") {
		return "folder ./" + filepath.ToSlash(rel)
	}
	return "folder " + src.Path
}

// sourceSize is what discovery measured of a source; 0 (a spinner) where it could not.
func sourceSize(plan *compose.Plan, src archive.Source) int64 {
	for _, it := range plan.Items {
		if string(it.Kind) == src.Kind && it.Source == src.Path {
			return it.Size
		}
	}
	return 0
}

// countedSink counts the bytes of the files a source hands to the archive.
type countedSink struct {
	files.Sink
	task *progress.Task
}

func (c countedSink) Add(hdr *tar.Header, r io.Reader) error {
	if _, sparse := r.(*archive.Sparse); sparse || r == nil {
		// the writer looks for its holes by type; its size counts once it is stored
		err := c.Sink.Add(hdr, r)
		c.task.Add(hdr.Size)
		return err
	}
	return c.Sink.Add(hdr, c.task.Reader(r))
}
