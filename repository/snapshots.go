package repository

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/kopia/kopia/repo"
	"github.com/kopia/kopia/repo/blob"
	"github.com/kopia/kopia/repo/content"
	"github.com/kopia/kopia/repo/manifest"
	"github.com/kopia/kopia/repo/object"
	"github.com/kopia/kopia/snapshot"
)

// Snapshot is one backup in the repository.
type Snapshot struct {
	// ID is the backup's stable ID (32 hex digits, kept in the kopia manifest's echobackup-id
	// tag). Kopia's own manifest ID changes whenever a pin is added or removed, so it cannot
	// be what users and verify records refer to.
	ID         string
	ManifestID string // the current kopia manifest ID (what `kopia snapshot ls -i` shows)
	Project    string
	Created    time.Time // the archive manifest's Created (ms precision), used for ordering
	Labels     map[string]string
	Pins       []string      // reasons; empty: not pinned
	Size       int64         // logical bytes of the snapshot (all members)
	Verified   *Verification // last verify recorded for it, nil: never
}

// Verification is the outcome of one verify of a snapshot.
type Verification struct {
	At   time.Time
	Deep bool
	OK   bool
}

const (
	verifyType = "echobackup-verify"
	// labels of a verify record
	labelSnapshot = "snapshot"
	labelAt       = "at"
	labelDeep     = "deep"
	labelOK       = "ok"
)

// List returns the snapshots of project ("" = all), newest first.
func (r *Repository) List(ctx context.Context, project string) ([]Snapshot, error) {
	mans, err := r.manifests(ctx, project)
	if err != nil {
		return nil, err
	}
	verified, err := r.verifications(ctx)
	if err != nil {
		return nil, err
	}
	out := make([]Snapshot, 0, len(mans))
	for _, m := range mans {
		s := toSnapshot(m)
		if v, ok := verified[s.ID]; ok {
			s.Verified = &v
		}
		out = append(out, s)
	}
	sort.SliceStable(out, func(i, j int) bool {
		if !out[i].Created.Equal(out[j].Created) {
			return out[i].Created.After(out[j].Created)
		}
		return out[i].ID > out[j].ID
	})
	return out, nil
}

// manifests loads the kopia snapshot manifests written by this package.
func (r *Repository) manifests(ctx context.Context, project string) ([]*snapshot.Manifest, error) {
	var tags map[string]string
	if project != "" {
		tags = map[string]string{tagProject: project}
	}
	ids, err := snapshot.ListSnapshotManifests(ctx, r.rep, nil, tags)
	if err != nil {
		return nil, fmt.Errorf("listing backups in %s: %w", r.Address(), err)
	}
	mans, err := snapshot.LoadSnapshots(ctx, r.rep, ids)
	if err != nil {
		return nil, fmt.Errorf("loading backups in %s: %w", r.Address(), err)
	}
	if len(mans) != len(ids) {
		return nil, fmt.Errorf("loading backups in %s: %d of %d snapshot manifests could not be read", r.Address(), len(ids)-len(mans), len(ids))
	}
	out := mans[:0]
	for _, m := range mans {
		if m.Tags[tagID] != "" {
			out = append(out, m)
		}
	}
	return out, nil
}

func toSnapshot(m *snapshot.Manifest) Snapshot {
	s := Snapshot{
		ID: m.Tags[tagID], ManifestID: string(m.ID), Project: m.Tags[tagProject],
		Pins: append([]string(nil), m.Pins...),
	}
	s.Created, _ = time.Parse(time.RFC3339Nano, m.Tags[tagCreated])
	if s.Created.IsZero() {
		s.Created = m.StartTime.ToTime().UTC()
	}
	for k, v := range m.Tags {
		if name, ok := strings.CutPrefix(k, tagLabel); ok {
			if s.Labels == nil {
				s.Labels = map[string]string{}
			}
			s.Labels[name] = v
		}
	}
	if m.RootEntry != nil {
		s.Size = m.RootEntry.FileSize
	}
	return s
}

// verifications returns the newest verify record of each snapshot ID.
func (r *Repository) verifications(ctx context.Context) (map[string]Verification, error) {
	ents, err := r.rep.FindManifests(ctx, map[string]string{manifest.TypeLabelKey: verifyType})
	if err != nil {
		return nil, fmt.Errorf("listing verify records in %s: %w", r.Address(), err)
	}
	out := map[string]Verification{}
	for _, e := range ents {
		v, ok := verificationOf(e.Labels)
		if !ok {
			continue
		}
		id := e.Labels[labelSnapshot]
		if old, seen := out[id]; !seen || v.At.After(old.At) {
			out[id] = v
		}
	}
	return out, nil
}

func verificationOf(l map[string]string) (Verification, bool) {
	at, err := time.Parse(time.RFC3339Nano, l[labelAt])
	if err != nil {
		return Verification{}, false
	}
	deep, _ := strconv.ParseBool(l[labelDeep])
	ok, _ := strconv.ParseBool(l[labelOK])
	return Verification{At: at, Deep: deep, OK: ok}, true
}

// Find resolves ref: "latest", an ID (stable or kopia manifest ID), or a unique prefix of an ID.
func (r *Repository) Find(ctx context.Context, project, ref string) (Snapshot, error) {
	all, err := r.List(ctx, project)
	if err != nil {
		return Snapshot{}, err
	}
	what := "backup"
	if project != "" {
		what = "backup of " + project
	}
	if ref == "latest" || ref == "" {
		if len(all) == 0 {
			return Snapshot{}, fmt.Errorf("%w: no %s in %s", ErrNotFound, what, r.Address())
		}
		return all[0], nil
	}
	var matches []Snapshot
	for _, s := range all {
		if s.ID == ref || s.ManifestID == ref {
			return s, nil
		}
		if strings.HasPrefix(s.ID, ref) {
			matches = append(matches, s)
		}
	}
	switch len(matches) {
	case 0:
		return Snapshot{}, fmt.Errorf("%w: no %s with ID %q in %s", ErrNotFound, what, ref, r.Address())
	case 1:
		return matches[0], nil
	}
	return Snapshot{}, fmt.Errorf("backup ID prefix %q is ambiguous: %d backups match", ref, len(matches))
}

// load finds the kopia manifest of a stable ID (or a kopia manifest ID).
func (r *Repository) load(ctx context.Context, id string) (*snapshot.Manifest, error) {
	mans, err := r.manifests(ctx, "")
	if err != nil {
		return nil, err
	}
	for _, m := range mans {
		if m.Tags[tagID] == id || string(m.ID) == id {
			return m, nil
		}
	}
	return nil, fmt.Errorf("%w: no backup with ID %q in %s", ErrNotFound, id, r.Address())
}

// Manifest returns the bytes of the backup's manifest.json.
func (r *Repository) Manifest(ctx context.Context, id string) ([]byte, error) {
	rc, err := r.openMember(ctx, id, manifestName)
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	b, err := io.ReadAll(rc)
	if err != nil {
		return nil, fmt.Errorf("reading manifest.json of backup %s: %w", id, err)
	}
	return b, nil
}

// OpenTar opens the backup's files.tar.
func (r *Repository) OpenTar(ctx context.Context, id string) (io.ReadCloser, error) {
	return r.openMember(ctx, id, tarName)
}

// OpenStream opens the stream member name of the backup.
func (r *Repository) OpenStream(ctx context.Context, id, name string) (io.ReadCloser, error) {
	return r.openMember(ctx, id, name)
}

func (r *Repository) openMember(ctx context.Context, id, name string) (io.ReadCloser, error) {
	m, err := r.load(ctx, id)
	if err != nil {
		return nil, err
	}
	e, err := r.lookup(ctx, m, name)
	if err != nil {
		return nil, fmt.Errorf("opening %s of backup %s: %w", name, id, err)
	}
	rd, err := r.rep.OpenObject(ctx, e.ObjectID)
	if err != nil {
		return nil, fmt.Errorf("opening %s of backup %s: %w", name, id, err)
	}
	return &memberReader{Reader: rd, what: name + " of backup " + id}, nil
}

// memberReader names the member in read errors (a missing pack shows up only when read).
type memberReader struct {
	object.Reader
	what string
}

func (m *memberReader) Read(p []byte) (int, error) {
	n, err := m.Reader.Read(p)
	if err != nil && !errors.Is(err, io.EOF) {
		err = fmt.Errorf("reading %s: %w", m.what, err)
	}
	return n, err
}

// lookup walks the snapshot's directory objects down to the file name ("db/echo.dump").
func (r *Repository) lookup(ctx context.Context, m *snapshot.Manifest, name string) (*snapshot.DirEntry, error) {
	dir := m.RootEntry
	parts := strings.Split(name, "/")
	for i, p := range parts {
		dm, err := r.readDir(ctx, dir.ObjectID)
		if err != nil {
			return nil, err
		}
		var found *snapshot.DirEntry
		for _, e := range dm.Entries {
			if e.Name == p {
				found = e
			}
		}
		last := i == len(parts)-1
		if found == nil || (last && found.Type != snapshot.EntryTypeFile) || (!last && found.Type != snapshot.EntryTypeDirectory) {
			return nil, fmt.Errorf("%w: the backup has no member %q", ErrNotFound, name)
		}
		dir = found
	}
	return dir, nil
}

func (r *Repository) readDir(ctx context.Context, oid object.ID) (*snapshot.DirManifest, error) {
	rd, err := r.rep.OpenObject(ctx, oid)
	if err != nil {
		return nil, fmt.Errorf("opening directory object %v: %w", oid, err)
	}
	defer rd.Close()
	var dm snapshot.DirManifest
	if err := json.NewDecoder(rd).Decode(&dm); err != nil {
		return nil, fmt.Errorf("reading directory object %v: %w", oid, err)
	}
	return &dm, nil
}

// CheckContents checks that every content the snapshot references is in the index and that its
// pack blob exists in storage, without reading data.
func (r *Repository) CheckContents(ctx context.Context, id string) error {
	m, err := r.load(ctx, id)
	if err != nil {
		return err
	}
	dr, err := r.direct()
	if err != nil {
		return err
	}
	packs := map[blob.ID]bool{}
	for _, prefix := range content.PackBlobIDPrefixes {
		err := dr.BlobReader().ListBlobs(ctx, prefix, func(bm blob.Metadata) error {
			packs[bm.BlobID] = true
			return nil
		})
		if err != nil {
			return fmt.Errorf("listing pack blobs in %s: %w", r.Address(), err)
		}
	}
	var problems []string
	var walk func(rel string, e *snapshot.DirEntry) error
	walk = func(rel string, e *snapshot.DirEntry) error {
		cids, err := r.rep.VerifyObject(ctx, e.ObjectID)
		if err != nil {
			problems = append(problems, fmt.Sprintf("%s: %v", rel, err))
			return nil
		}
		missing := map[blob.ID]int{}
		for _, cid := range cids {
			info, err := r.rep.ContentInfo(ctx, cid)
			if err != nil {
				problems = append(problems, fmt.Sprintf("%s: content %v: %v", rel, cid, err))
				continue
			}
			if !packs[info.PackBlobID] {
				missing[info.PackBlobID]++
			}
		}
		for p, n := range missing {
			problems = append(problems, fmt.Sprintf("%s: pack blob %s is missing (%d contents)", rel, p, n))
		}
		if e.Type != snapshot.EntryTypeDirectory || len(missing) > 0 {
			return nil
		}
		dm, err := r.readDir(ctx, e.ObjectID)
		if err != nil {
			return err
		}
		for _, c := range dm.Entries {
			if err := walk(strings.TrimPrefix(rel+"/"+c.Name, "/"), c); err != nil {
				return err
			}
		}
		return nil
	}
	if err := walk("", m.RootEntry); err != nil {
		return fmt.Errorf("checking backup %s: %w", id, err)
	}
	if len(problems) > 0 {
		sort.Strings(problems)
		return fmt.Errorf("backup %s is damaged in %s: %s", id, r.Address(), strings.Join(problems, "; "))
	}
	return nil
}

// write runs fn in a write session and flushes it.
func (r *Repository) write(ctx context.Context, purpose string, fn func(ctx context.Context, w repo.RepositoryWriter) error) error {
	return repo.WriteSession(ctx, r.rep, repo.WriteSessionOptions{Purpose: purpose}, fn)
}

// RecordVerify stores the outcome of a verify of the backup.
func (r *Repository) RecordVerify(ctx context.Context, id string, v Verification) error {
	m, err := r.load(ctx, id)
	if err != nil {
		return err
	}
	labels := map[string]string{
		manifest.TypeLabelKey: verifyType,
		labelSnapshot:         m.Tags[tagID],
		labelAt:               v.At.UTC().Format(time.RFC3339Nano),
		labelDeep:             strconv.FormatBool(v.Deep),
		labelOK:               strconv.FormatBool(v.OK),
	}
	err = r.write(ctx, "echobackup verify", func(ctx context.Context, w repo.RepositoryWriter) error {
		_, err := w.PutManifest(ctx, labels, v)
		return err
	})
	if err != nil {
		return fmt.Errorf("recording the verify of backup %s: %w", id, err)
	}
	return nil
}

// Delete removes the backup's snapshot and its verify records. Its data goes at the next full
// maintenance that is allowed to collect it. Like `kopia snapshot delete`, it does not look at
// pins: deciding what may go (and that a pinned backup may not) is the caller's.
func (r *Repository) Delete(ctx context.Context, id string) error {
	m, err := r.load(ctx, id)
	if err != nil {
		return err
	}
	records, err := r.rep.FindManifests(ctx, map[string]string{manifest.TypeLabelKey: verifyType, labelSnapshot: m.Tags[tagID]})
	if err != nil {
		return fmt.Errorf("deleting backup %s: listing its verify records: %w", id, err)
	}
	err = r.write(ctx, "echobackup delete", func(ctx context.Context, w repo.RepositoryWriter) error {
		if err := w.DeleteManifest(ctx, m.ID); err != nil {
			return err
		}
		for _, e := range records {
			if err := w.DeleteManifest(ctx, e.ID); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("deleting backup %s: %w", id, err)
	}
	return nil
}

// Pin adds reason to the backup's pins.
func (r *Repository) Pin(ctx context.Context, id, reason string) error {
	if reason == "" {
		return errors.New("a pin needs a reason")
	}
	return r.updatePins(ctx, id, func(m *snapshot.Manifest) bool { return m.UpdatePins([]string{reason}, nil) })
}

// Unpin removes every pin of the backup.
func (r *Repository) Unpin(ctx context.Context, id string) error {
	return r.updatePins(ctx, id, func(m *snapshot.Manifest) bool {
		return m.UpdatePins(nil, append([]string(nil), m.Pins...))
	})
}

// updatePins saves the changed manifest and deletes the old one, as `kopia snapshot pin` does.
func (r *Repository) updatePins(ctx context.Context, id string, change func(*snapshot.Manifest) bool) error {
	m, err := r.load(ctx, id)
	if err != nil {
		return err
	}
	m.Tags = maps.Clone(m.Tags)
	if !change(m) {
		return nil
	}
	err = r.write(ctx, "echobackup pin", func(ctx context.Context, w repo.RepositoryWriter) error {
		return snapshot.UpdateSnapshot(ctx, w, m)
	})
	if err != nil {
		return fmt.Errorf("changing the pins of backup %s: %w", id, err)
	}
	return nil
}
