// Package files is the file side of a backup: it turns the project's data folders and volumes
// into archive members, with modes, owners, mtimes, symlinks and empty folders kept.
package files

import (
	"archive/tar"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"

	"github.com/echo-backup/echo-backup/archive"
)

// Sink receives a source's entries: the members to store (r is nil for anything but regular
// files, and an *archive.Sparse for files with holes), and the entries a backup cannot hold.
type Sink interface {
	Add(hdr *tar.Header, r io.Reader) error
	// Leave records an entry that is not saved: kind is socket, device or fifo.
	Leave(name, kind string)
}

// ReadDir walks a local folder and hands every entry to sink under prefix ("files/data/").
// Paths in skip (absolute) are left out, so a backup folder inside a data folder is not saved into itself.
func ReadDir(ctx context.Context, root, prefix string, skip []string, sink Sink) error {
	links := map[fileID]string{} // first member name of each file with several links
	return filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return fmt.Errorf("reading %s: %w", p, err)
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if p != root && (isSkipped(p, skip) || isOwnTemp(filepath.Base(p)) && filepath.Dir(p) == root) {
			if d.IsDir() {
				return filepath.SkipDir
			}
			return nil
		}
		rel, err := filepath.Rel(root, p)
		if err != nil {
			return err
		}
		return addLocal(p, memberName(prefix, filepath.ToSlash(rel), d.IsDir()), sink, links)
	})
}

type fileID struct{ dev, ino uint64 }

// TempPrefix starts the names of restore's staging and set-aside folders inside a volume:
// they are never the user's data.
const TempPrefix = ".echobackup-"

func isOwnTemp(rel string) bool {
	first, _, _ := strings.Cut(rel, "/")
	return strings.HasPrefix(first, TempPrefix)
}

func isBelowAny(rel string, roots []string) bool {
	for _, root := range roots {
		if rel == root || strings.HasPrefix(rel, root+"/") {
			return true
		}
	}
	return false
}

func isSkipped(p string, skip []string) bool {
	for _, s := range skip {
		if p == s {
			return true
		}
	}
	return false
}

func memberName(prefix, rel string, dir bool) string {
	name := prefix
	if rel != "." {
		name = path.Join(prefix, rel)
	}
	if dir && !strings.HasSuffix(name, "/") {
		name += "/"
	}
	return name
}

func addLocal(p, name string, sink Sink, links map[fileID]string) error {
	info, err := os.Lstat(p)
	if err != nil {
		return err
	}
	if kind := unsaved(info.Mode()); kind != "" {
		sink.Leave(name, kind) // live endpoints, not data
		return nil
	}
	hdr, err := localHeader(p, name, info)
	if err != nil {
		return err
	}
	if hdr.Typeflag != tar.TypeReg {
		return sink.Add(hdr, nil)
	}
	if st, ok := info.Sys().(*syscall.Stat_t); ok && st.Nlink > 1 {
		id := fileID{uint64(st.Dev), st.Ino}
		if first, seen := links[id]; seen {
			hdr.Typeflag, hdr.Linkname, hdr.Size = tar.TypeLink, first, 0
			return sink.Add(hdr, nil)
		}
		links[id] = name
	}
	return addContent(p, hdr, info, sink)
}

// localHeader describes an entry with numeric owners: names of owners differ between hosts
// and containers, the numbers are what the app uses.
func localHeader(p, name string, info fs.FileInfo) (*tar.Header, error) {
	link := ""
	if info.Mode()&fs.ModeSymlink != 0 {
		var err error
		if link, err = os.Readlink(p); err != nil {
			return nil, err
		}
	}
	hdr, err := tar.FileInfoHeader(numericOwner{info}, link)
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", p, err)
	}
	hdr.Name, hdr.Uname, hdr.Gname = name, "", ""
	if st, ok := info.Sys().(*syscall.Stat_t); ok {
		hdr.Uid, hdr.Gid = int(st.Uid), int(st.Gid)
	}
	if hdr.Typeflag != tar.TypeReg {
		hdr.Size = 0
	}
	return hdr, nil
}

// addContent hands over a regular file's content: its data extents when it has holes.
func addContent(p string, hdr *tar.Header, info fs.FileInfo, sink Sink) error {
	f, err := os.Open(p)
	if err != nil {
		return fmt.Errorf("reading %s: %w", p, err)
	}
	defer f.Close()
	if st, ok := info.Sys().(*syscall.Stat_t); ok && st.Blocks*512 < hdr.Size {
		if data, err := dataExtents(f, hdr.Size); err == nil && holes(data, hdr.Size) {
			return sink.Add(hdr, &archive.Sparse{File: f, Size: hdr.Size, Data: data})
		}
	}
	// A file that grows while it is read (a log) is saved as it was when the walk reached it.
	return sink.Add(hdr, io.LimitReader(f, hdr.Size))
}

// dataExtents asks the file system where f's data is (SEEK_DATA, SEEK_HOLE), up to size.
func dataExtents(f *os.File, size int64) ([]archive.Extent, error) {
	var out []archive.Extent
	fd := int(f.Fd())
	for off := int64(0); off < size; {
		start, err := unix.Seek(fd, off, unix.SEEK_DATA)
		if errors.Is(err, unix.ENXIO) {
			break // only a hole is left
		}
		if err != nil {
			return nil, err
		}
		end, err := unix.Seek(fd, start, unix.SEEK_HOLE)
		if err != nil {
			return nil, err
		}
		start, end = min(start, size), min(end, size)
		if end > start {
			out = append(out, archive.Extent{Offset: start, Length: end - start})
		}
		off = end
	}
	_, err := f.Seek(0, io.SeekStart)
	return out, err
}

func holes(data []archive.Extent, size int64) bool {
	for _, e := range data {
		size -= e.Length
	}
	return size > 0
}

// numericOwner keeps tar.FileInfoHeader from looking up user and group names: a cgo call per
// file that cost a third of a save's CPU, for names that mean nothing in the containers anyway.
type numericOwner struct{ fs.FileInfo }

func (numericOwner) Uname() (string, error) { return "", nil }
func (numericOwner) Gname() (string, error) { return "", nil }

// NumericOwner wraps a FileInfo for tar.FileInfoHeader without name look-ups.
func NumericOwner(fi fs.FileInfo) fs.FileInfo { return numericOwner{fi} }

// unsaved names the kind of an entry a backup does not hold, or "" for one it does.
func unsaved(m fs.FileMode) string {
	switch {
	case m&fs.ModeSocket != 0:
		return "socket"
	case m&fs.ModeDevice != 0:
		return "device"
	case m&fs.ModeNamedPipe != 0:
		return "fifo"
	case m.IsRegular() || m.IsDir() || m&fs.ModeSymlink != 0:
		return ""
	}
	return "other"
}

// unsavedType is unsaved for tar's type flags, for streams read from the engine.
func unsavedType(flag byte) string {
	switch flag {
	case tar.TypeChar, tar.TypeBlock:
		return "device"
	case tar.TypeFifo:
		return "fifo"
	}
	return ""
}

// ReadTar re-emits a tar stream (from CopyFromContainer, whose entries start with the copied
// folder's base name) under prefix. Entries at or below a path in skip (relative, with '/')
// are left out. The engine's stream has no sockets (it drops them) and no holes.
func ReadTar(ctx context.Context, r io.Reader, prefix string, skip []string, sink Sink) error {
	tr := tar.NewReader(r)
	for {
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("reading the helper's tar stream: %w", err)
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		_, rest, _ := strings.Cut(strings.TrimPrefix(hdr.Name, "./"), "/")
		if isOwnTemp(rest) || isBelowAny(strings.TrimSuffix(rest, "/"), skip) {
			continue
		}
		hdr.Name = memberName(prefix, strings.TrimSuffix(nonEmpty(rest), "/"), hdr.Typeflag == tar.TypeDir)
		if kind := unsavedType(hdr.Typeflag); kind != "" {
			sink.Leave(hdr.Name, kind)
			continue
		}
		hdr.Uname, hdr.Gname = "", ""
		if hdr.Typeflag == tar.TypeLink {
			_, target, _ := strings.Cut(strings.TrimPrefix(hdr.Linkname, "./"), "/")
			hdr.Linkname = memberName(prefix, target, false)
		}
		var content io.Reader
		if hdr.Typeflag == tar.TypeReg {
			content = tr
		}
		if err := sink.Add(hdr, content); err != nil {
			return err
		}
	}
}

func nonEmpty(s string) string {
	if s == "" {
		return "."
	}
	return s
}
