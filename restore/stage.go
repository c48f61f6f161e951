package restore

import (
	"archive/tar"
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/moby/moby/api/types/mount"
	"github.com/moby/moby/client"

	"github.com/echo-backup/echo-backup/archive"
	"github.com/echo-backup/echo-backup/compose"
	"github.com/echo-backup/echo-backup/engine"
	"github.com/echo-backup/echo-backup/files"
)

// folderStage restores one folder or volume: the archive's entries are extracted by the engine
// into a staging folder beside the live one, inside a helper container, so owners come back as
// saved whatever user runs the CLI, and remote engines work the same way. The swap is a rename.
type folderStage struct {
	name   string // source name in the archive
	prefix string // member prefix, "files/data/"
	kind   string // bind or volume
	source string // host path or volume name
	h      *engine.Helper
	live   string // paths inside the helper
	staged string
	old    string
	root   *tar.Header // the folder's own mode and owner
	// Either local, when this machine sees the staging folder and may set owners, or the
	// engine's extraction through tw.
	local  *files.Extractor
	tw     *tar.Writer
	pw     *io.PipeWriter
	copied chan error
	// dense counts sparse files the engine's extraction wrote whole.
	dense int
	// layout holds every member to the archive's rules, whatever the input: the engine
	// extracts at the helper's root, so a member beneath a link must never reach it.
	layout *archive.Layout
}

const helperRoot = "/echobackup"

func newFolderStage(src archive.Source, kind, source, id string) *folderStage {
	s := &folderStage{name: src.Name, prefix: src.Member, kind: kind, source: source, layout: archive.NewLayout()}
	if kind == "volume" {
		s.live = helperRoot + "/vol"
		s.staged = s.live + "/" + files.TempPrefix + "new-" + id
		s.old = s.live + "/" + files.TempPrefix + "old-" + id
		return s
	}
	base := filepath.Base(source)
	s.live = helperRoot + "/parent/" + base
	s.staged = helperRoot + "/parent/." + base + files.TempPrefix + "new-" + id
	s.old = helperRoot + "/parent/." + base + files.TempPrefix + "old-" + id
	return s
}

func (s *folderStage) mount() mount.Mount {
	if s.kind == "volume" {
		return mount.Mount{Type: mount.TypeVolume, Source: s.source, Target: helperRoot + "/vol"}
	}
	return mount.Mount{Type: mount.TypeBind, Source: filepath.Dir(s.source), Target: helperRoot + "/parent"}
}

// open starts the helper and prepares the staging folder, then the way members reach it.
func (s *folderStage) open(ctx context.Context, api compose.Engine, project, image string) error {
	h, err := engine.CreateHelper(ctx, api, engine.HelperOptions{Project: project, Image: image,
		Mounts: []mount.Mount{s.mount()}, Cmd: []string{"sleep", "86400"}, Purpose: "restore"})
	if err != nil {
		return err
	}
	s.h = h
	if err := h.Start(ctx); err != nil {
		return err
	}
	probe := files.TempPrefix + "probe-" + randomID()
	if err := s.sh(ctx, `rm -rf "$1" && mkdir -p "$1" && touch "$1/$2"`, s.staged, probe); err != nil {
		return fmt.Errorf("preparing a staging folder for %s: %w", s.source, err)
	}
	if dir := s.hostStaged(ctx, api, probe); dir != "" {
		s.local, err = files.NewExtractor(dir)
		return err
	}
	return s.openEngine(ctx)
}

// hostStaged is the staging folder's path on this machine when this process can write it
// as the engine would: running as root, and the probe file the helper made is there. A
// remote engine, Docker Desktop's VM or a rootless engine's volumes fail the probe.
func (s *folderStage) hostStaged(ctx context.Context, api compose.Engine, probe string) string {
	// ECHOBACKUP_STAGE=engine: always through the engine, as on a remote one (tests, doubt).
	if os.Geteuid() != 0 || os.Getenv("ECHOBACKUP_STAGE") == "engine" {
		return ""
	}
	base := filepath.Dir(s.source)
	if s.kind == "volume" {
		v, err := api.VolumeInspect(ctx, s.source, client.VolumeInspectOptions{})
		if err != nil {
			return ""
		}
		base = v.Volume.Mountpoint
	}
	dir := filepath.Join(base, filepath.Base(s.staged))
	if os.Remove(filepath.Join(dir, probe)) != nil {
		return ""
	}
	return dir
}

// openEngine streams members to the engine's own extraction in the helper. The stream is
// extracted at the helper's root with full paths: the engine refuses links whose target
// leaves the extraction folder, and a link to the music library is data to keep as it is.
func (s *folderStage) openEngine(ctx context.Context) error {
	if err := s.sh(ctx, `rm -f "$1"/`+files.TempPrefix+`probe-*`, s.staged); err != nil {
		return err
	}
	pr, pw := io.Pipe()
	s.pw, s.tw, s.copied = pw, tar.NewWriter(pw), make(chan error, 1)
	go func() {
		err := s.h.Write(ctx, "/", pr)
		pr.CloseWithError(err)
		s.copied <- err
	}()
	return nil
}

func (s *folderStage) sh(ctx context.Context, script string, args ...string) error {
	cmd := append([]string{"sh", "-c", script, "sh"}, args...)
	_, err := engine.Output(ctx, s.h.API(), s.h.ID, engine.ExecOptions{Cmd: cmd})
	return err
}

// add writes one archive member into the staging folder, under the archive's rules (the
// ones Walk and so verify apply): a clean name, not beneath a link or a file, a hard link to
// an earlier file of the same source.
func (s *folderStage) add(hdr *tar.Header, r io.Reader) error {
	if err := s.layout.Check(hdr); err != nil {
		return err
	}
	rel := strings.TrimPrefix(hdr.Name, s.prefix)
	if strings.Trim(rel, "/") == "" {
		h := *hdr
		s.root = &h
		return nil
	}
	h := *hdr
	h.Name = strings.TrimSuffix(rel, "/")
	if h.Typeflag == tar.TypeLink {
		target, ok := strings.CutPrefix(h.Linkname, s.prefix)
		if !ok {
			return fmt.Errorf("hard link %s points outside its folder: %s", hdr.Name, hdr.Linkname)
		}
		h.Linkname = target
	}
	if s.local != nil {
		return s.local.Add(h.Name, &h, r, archive.IsSparse(hdr))
	}
	return s.addToEngine(&h, r, archive.IsSparse(hdr))
}

func (s *folderStage) addToEngine(h *tar.Header, r io.Reader, sparse bool) error {
	at := strings.TrimPrefix(s.staged, "/") + "/"
	name := h.Name
	h.Name = at + h.Name
	if h.Typeflag == tar.TypeLink {
		h.Linkname = at + h.Linkname
	}
	// The longer name may need PAX, whatever the archive used; the GNU.sparse records of the
	// archive's header do not describe this stream.
	h.Format, h.PAXRecords = tar.FormatPAX, nil
	if sparse {
		s.dense++
	}
	if err := s.tw.WriteHeader(h); err != nil {
		return fmt.Errorf("staging %s: %w", name, err)
	}
	if r != nil {
		if _, err := io.Copy(s.tw, r); err != nil {
			return fmt.Errorf("staging %s: %w", name, err)
		}
	}
	return nil
}

// finish ends the stream and waits for the engine to have written everything.
func (s *folderStage) finish(failure error) error {
	if s.local != nil {
		err := s.local.Close()
		s.local = nil
		if failure != nil {
			return failure
		}
		if err != nil {
			return fmt.Errorf("staging %s: %w", s.source, err)
		}
		return s.applyRoot()
	}
	if s.pw == nil {
		return failure
	}
	if failure != nil {
		s.pw.CloseWithError(failure)
		<-s.copied
		return failure
	}
	if err := s.tw.Close(); err != nil {
		s.pw.CloseWithError(err)
	} else {
		s.pw.Close()
	}
	if err := <-s.copied; err != nil {
		return fmt.Errorf("staging %s: %w", s.source, err)
	}
	return s.applyRoot()
}

// applyRoot gives the staged folder the saved folder's own mode and owner (uid 1001 for Echo).
func (s *folderStage) applyRoot() error {
	if s.root == nil {
		return nil
	}
	return s.setRoot(context.Background(), s.staged)
}

func (s *folderStage) setRoot(ctx context.Context, dir string) error {
	return s.sh(ctx, `chown "$2:$3" "$1" && chmod "$4" "$1" && touch -d "@$5" "$1"`, dir,
		fmt.Sprint(s.root.Uid), fmt.Sprint(s.root.Gid), fmt.Sprintf("%o", s.root.Mode&0o7777), fmt.Sprint(s.root.ModTime.Unix()))
}

// Folder swaps: $1 the live folder, $2 the staged one, $3 where the old one is set aside.
// For a bind mount the folders are siblings. A volume cannot be renamed, so its entries move
// inside it, and a marker says when all the old ones are aside. The undo scripts look at what
// exists, so they are right after a swap that completed, failed halfway, or never ran.
const (
	swapBind = `set -e
if [ -e "$1" ]; then mv "$1" "$3"; fi
mv "$2" "$1"`
	unswapBind = `set -e
if [ -e "$1" ] && [ ! -e "$2" ]; then mv "$1" "$2"; fi
if [ -e "$3" ] && [ ! -e "$1" ]; then mv "$3" "$1"; fi`
	swapVolume = `set -e
cd "$1"; new=$(basename "$2"); old=$(basename "$3")
mkdir -p "$old"
for f in .[!.]* ..?* *; do
  [ -e "$f" ] || [ -L "$f" ] || continue
  [ "$f" = "$new" ] || [ "$f" = "$old" ] || mv "$f" "$old/"
done
touch "$old/.echobackup-all-aside"
for f in "$new"/.[!.]* "$new"/..?* "$new"/*; do
  [ -e "$f" ] || [ -L "$f" ] || continue
  mv "$f" .
done
rmdir "$new"`
	unswapVolume = `set -e
cd "$1"; new=$(basename "$2"); old=$(basename "$3")
[ -d "$old" ] || exit 0
if [ -e "$old/.echobackup-all-aside" ]; then
  mkdir -p "$new"
  for f in .[!.]* ..?* *; do
    [ -e "$f" ] || [ -L "$f" ] || continue
    [ "$f" = "$new" ] || [ "$f" = "$old" ] || mv "$f" "$new/"
  done
  rm "$old/.echobackup-all-aside"
fi
for f in "$old"/.[!.]* "$old"/..?* "$old"/*; do
  [ -e "$f" ] || [ -L "$f" ] || continue
  mv "$f" .
done
rmdir "$old"`
)

func (s *folderStage) swap(ctx context.Context) error {
	script := swapBind
	if s.kind == "volume" {
		script = swapVolume
	}
	if err := s.sh(ctx, script, s.live, s.staged, s.old); err != nil {
		return fmt.Errorf("swapping in the restored %s: %w", s.source, err)
	}
	return nil
}

func (s *folderStage) unswap(ctx context.Context) error {
	script := unswapBind
	if s.kind == "volume" {
		script = unswapVolume
	}
	return s.sh(ctx, script, s.live, s.staged, s.old)
}

// applyVolumeRoot: in a volume the root is the volume itself, so its mode and owner are set
// after the swap rather than on the staging folder.
func (s *folderStage) applyVolumeRoot(ctx context.Context) error {
	if s.kind != "volume" || s.root == nil {
		return nil
	}
	return s.setRoot(ctx, s.live)
}

// discard removes the staged copy (after a failure) or the old one (after success).
func (s *folderStage) discard(ctx context.Context, which string) error {
	if s.h == nil {
		return nil
	}
	return s.sh(ctx, `rm -rf "$1"`, which)
}

func (s *folderStage) close() {
	if s.h != nil {
		_ = s.h.Remove()
		s.h = nil
	}
}

func (s *folderStage) describe() string {
	if s.kind == "volume" {
		return "volume " + s.source
	}
	return "folder " + s.source
}

func randomID() string {
	b := make([]byte, 8)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}
