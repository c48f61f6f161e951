package repository

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"maps"
	"path"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/kopia/kopia/fs"
	"github.com/kopia/kopia/repo"
	"github.com/kopia/kopia/repo/object"
	"github.com/kopia/kopia/snapshot"
	"github.com/kopia/kopia/snapshot/snapshotfs"
)

const (
	tarName      = "files.tar"
	manifestName = "manifest.json"

	// Tag keys on the kopia snapshot manifest (kopia makes them labels, so List can filter on them).
	tagID      = "echobackup-id"
	tagProject = "project"
	tagCreated = "created"
	tagLabel   = "label:"
)

// sourceOf is the kopia source of a project: fixed host and user, so that the same project saved
// from two servers (a migrated deployment) is one history.
func sourceOf(project string) snapshot.SourceInfo {
	return snapshot.SourceInfo{Host: "echobackup", UserName: project, Path: "/" + project}
}

// BackupWriter writes one backup. Tar and each Stream may be used from different goroutines.
type BackupWriter struct {
	r       *Repository
	ctx     context.Context
	w       repo.RepositoryWriter
	project string
	tar     *member

	mu    sync.Mutex
	files map[string]*snapshot.DirEntry // by slash path
	open  map[string]bool
	done  bool // Commit or Abort ran: the write session is closed
}

// member is one file object being written.
type member struct {
	b    *BackupWriter
	name string
	ow   object.Writer
	n    int64
	done bool
}

func (m *member) Write(p []byte) (int, error) {
	if m.done {
		return 0, fmt.Errorf("writing %s after it was closed", m.name)
	}
	n, err := m.ow.Write(p)
	m.n += int64(n)
	if err != nil {
		return n, fmt.Errorf("writing %s to the repository: %w", m.name, err)
	}
	return n, nil
}

// Close finishes the object and records it for the snapshot's directory tree.
func (m *member) Close() error {
	if m.done {
		return nil
	}
	m.done = true
	oid, err := m.ow.Result()
	m.ow.Close() //nolint:errcheck
	m.b.mu.Lock()
	defer m.b.mu.Unlock()
	delete(m.b.open, m.name)
	if err != nil {
		return fmt.Errorf("finishing %s in the repository: %w", m.name, err)
	}
	m.b.files[m.name] = &snapshot.DirEntry{
		Name:        path.Base(m.name),
		Type:        snapshot.EntryTypeFile,
		Permissions: 0o600,
		FileSize:    m.n,
		ModTime:     fs.UTCTimestampFromTime(time.Now()),
		ObjectID:    oid,
	}
	return nil
}

// NewBackup starts writing one backup of project. Nothing becomes visible until Commit.
func (r *Repository) NewBackup(ctx context.Context, project string) (*BackupWriter, error) {
	if project == "" || strings.ContainsAny(project, "/\x00") {
		return nil, fmt.Errorf("invalid project name %q", project)
	}
	wctx, w, err := r.rep.NewWriter(ctx, repo.WriteSessionOptions{Purpose: "echobackup save " + project})
	if err != nil {
		return nil, fmt.Errorf("starting a backup of %s in %s: %w", project, r.Address(), err)
	}
	b := &BackupWriter{
		r: r, ctx: wctx, w: w, project: project,
		files: map[string]*snapshot.DirEntry{}, open: map[string]bool{},
	}
	b.tar = b.newMember(tarName)
	b.open[tarName] = true
	return b, nil
}

func (b *BackupWriter) newMember(name string) *member {
	opts := object.WriterOptions{Description: "FILE:" + name, Compressor: compressor, MetadataCompressor: compressor}
	if name != tarName {
		opts.Splitter = streamSplitter
	}
	return &member{b: b, name: name, ow: b.w.NewObjectWriter(b.ctx, opts)}
}

// Tar is files.tar. Commit closes it.
func (b *BackupWriter) Tar() io.Writer { return b.tar }

// Stream starts the member name (like "db/echo.dump"); its Close finishes the object.
func (b *BackupWriter) Stream(name string) (io.WriteCloser, error) {
	clean := path.Clean(name)
	if name == "" || clean != name || path.IsAbs(name) || strings.HasPrefix(name, "../") || name == ".." ||
		name == tarName || name == manifestName {
		return nil, fmt.Errorf("invalid stream name %q", name)
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.done {
		return nil, errors.New("the backup was already committed or aborted")
	}
	if b.open[name] || b.files[name] != nil {
		return nil, fmt.Errorf("stream %q written twice", name)
	}
	b.open[name] = true
	return b.newMember(name), nil
}

// Commit closes files.tar, writes manifest.json, the directory objects and the snapshot manifest,
// and flushes. Every stream must be closed before.
func (b *BackupWriter) Commit(ctx context.Context, manifestJSON []byte, created time.Time, labels map[string]string) (Snapshot, error) {
	fail := func(err error) (Snapshot, error) {
		return Snapshot{}, fmt.Errorf("committing the backup of %s to %s: %w", b.project, b.r.Address(), err)
	}
	if !b.finish() {
		return fail(errors.New("the backup was already committed or aborted"))
	}
	defer b.w.Close(ctx) //nolint:errcheck
	if err := b.tar.Close(); err != nil {
		return fail(err)
	}
	b.mu.Lock()
	var open []string
	for n := range b.open {
		open = append(open, n)
	}
	b.mu.Unlock()
	if len(open) > 0 {
		sort.Strings(open)
		return fail(fmt.Errorf("streams not closed: %s", strings.Join(open, ", ")))
	}
	mw := b.newMember(manifestName)
	if _, err := mw.Write(manifestJSON); err != nil {
		return fail(err)
	}
	b.open[manifestName] = true
	if err := mw.Close(); err != nil {
		return fail(err)
	}
	root, err := b.writeDir(ctx, "", b.tree())
	if err != nil {
		return fail(err)
	}
	created = created.UTC().Truncate(time.Millisecond)
	id, err := newID()
	if err != nil {
		return fail(err)
	}
	tags := map[string]string{tagID: id, tagProject: b.project, tagCreated: created.Format(time.RFC3339Nano)}
	for k, v := range labels {
		tags[tagLabel+k] = v
	}
	man := &snapshot.Manifest{
		Source:      sourceOf(b.project),
		Description: "echobackup save",
		StartTime:   fs.UTCTimestampFromTime(created),
		EndTime:     fs.UTCTimestampFromTime(time.Now()),
		RootEntry:   root,
		Tags:        tags,
	}
	man.Stats.TotalFileCount = int32(root.DirSummary.TotalFileCount)
	man.Stats.TotalFileSize = root.DirSummary.TotalFileSize
	if _, err := snapshot.SaveSnapshot(ctx, b.w, man); err != nil {
		return fail(err)
	}
	if err := b.w.Flush(ctx); err != nil {
		return fail(err)
	}
	return Snapshot{
		ID: id, ManifestID: string(man.ID), Project: b.project, Created: created,
		Labels: maps.Clone(labels), Size: root.FileSize,
	}, nil
}

// dirNode is a directory of the snapshot tree being built.
type dirNode struct {
	files map[string]*snapshot.DirEntry
	dirs  map[string]*dirNode
}

func newDirNode() *dirNode {
	return &dirNode{files: map[string]*snapshot.DirEntry{}, dirs: map[string]*dirNode{}}
}

func (b *BackupWriter) tree() *dirNode {
	b.mu.Lock()
	defer b.mu.Unlock()
	root := newDirNode()
	for name, e := range b.files {
		d := root
		parts := strings.Split(name, "/")
		for _, p := range parts[:len(parts)-1] {
			if d.dirs[p] == nil {
				d.dirs[p] = newDirNode()
			}
			d = d.dirs[p]
		}
		d.files[parts[len(parts)-1]] = e
	}
	return root
}

// writeDir writes d's directory manifest as kopia's uploader does, children first.
func (b *BackupWriter) writeDir(ctx context.Context, rel string, d *dirNode) (*snapshot.DirEntry, error) {
	var dmb snapshotfs.DirManifestBuilder
	for name, child := range d.dirs {
		e, err := b.writeDir(ctx, path.Join(rel, name), child)
		if err != nil {
			return nil, err
		}
		dmb.AddEntry(e)
	}
	for _, e := range d.files {
		dmb.AddEntry(e)
	}
	now := fs.UTCTimestampFromTime(time.Now())
	dm := dmb.Build(now, "")
	oid, err := snapshotfs.WriteDirManifest(ctx, b.w, rel, dm, compressor)
	if err != nil {
		return nil, fmt.Errorf("writing directory %q: %w", "/"+rel, err)
	}
	return &snapshot.DirEntry{
		Name:        path.Base("/" + rel),
		Type:        snapshot.EntryTypeDirectory,
		Permissions: 0o700,
		FileSize:    dm.Summary.TotalFileSize,
		ModTime:     now,
		ObjectID:    oid,
		DirSummary:  dm.Summary,
	}, nil
}

// Abort drops everything written (unreferenced contents are left for maintenance). After
// Commit it does nothing, so `defer b.Abort()` is the way to use it.
func (b *BackupWriter) Abort() {
	if b.finish() {
		b.w.Close(b.ctx) //nolint:errcheck
	}
}

// finish marks the writer finished; false if it already was.
func (b *BackupWriter) finish() bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.done {
		return false
	}
	b.done = true
	return true
}

// newID is a snapshot's stable ID: kopia's manifest ID changes when a pin is added or removed.
func newID() (string, error) {
	b := make([]byte, 16)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("generating a snapshot ID: %w", err)
	}
	return hex.EncodeToString(b), nil
}
