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
)

// AddFunc receives one member; r is nil for anything but regular files.
type AddFunc func(hdr *tar.Header, r io.Reader) error

// ReadDir walks a local folder and hands every entry to add under prefix ("files/data/").
// Paths in skip (absolute) are left out, so a backup folder inside a data folder is not saved into itself.
func ReadDir(ctx context.Context, root, prefix string, skip []string, add AddFunc) error {
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
		return addLocal(p, memberName(prefix, filepath.ToSlash(rel), d.IsDir()), add)
	})
}

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

func addLocal(p, name string, add AddFunc) error {
	info, err := os.Lstat(p)
	if err != nil {
		return err
	}
	if !isArchivable(info.Mode()) {
		return nil // sockets, pipes and devices are live endpoints, not data
	}
	link := ""
	if info.Mode()&fs.ModeSymlink != 0 {
		if link, err = os.Readlink(p); err != nil {
			return err
		}
	}
	hdr, err := tar.FileInfoHeader(numericOwner{info}, link)
	if err != nil {
		return fmt.Errorf("reading %s: %w", p, err)
	}
	hdr.Name = name
	// Names of owners differ between hosts and containers; the numbers are what the app uses.
	hdr.Uname, hdr.Gname = "", ""
	if st, ok := info.Sys().(*syscall.Stat_t); ok {
		hdr.Uid, hdr.Gid = int(st.Uid), int(st.Gid)
	}
	if hdr.Typeflag != tar.TypeReg {
		hdr.Size = 0
		return add(hdr, nil)
	}
	f, err := os.Open(p)
	if err != nil {
		return fmt.Errorf("reading %s: %w", p, err)
	}
	defer f.Close()
	// A file that grows while it is read (a log) is saved as it was when the walk reached it.
	return add(hdr, io.LimitReader(f, hdr.Size))
}

// numericOwner keeps tar.FileInfoHeader from looking up user and group names: a cgo call per
// file that cost a third of a save's CPU, for names that mean nothing in the containers anyway.
type numericOwner struct{ fs.FileInfo }

func (numericOwner) Uname() (string, error) { return "", nil }
func (numericOwner) Gname() (string, error) { return "", nil }

// NumericOwner wraps a FileInfo for tar.FileInfoHeader without name look-ups.
func NumericOwner(fi fs.FileInfo) fs.FileInfo { return numericOwner{fi} }

func isArchivable(m fs.FileMode) bool {
	return m.IsRegular() || m.IsDir() || m&fs.ModeSymlink != 0
}

// ReadTar re-emits a tar stream (from CopyFromContainer, whose entries start with the copied
// folder's base name) under prefix. Entries at or below a path in skip (relative, with '/')
// are left out.
func ReadTar(ctx context.Context, r io.Reader, prefix string, skip []string, add AddFunc) error {
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
		hdr.Uname, hdr.Gname = "", ""
		if hdr.Typeflag == tar.TypeLink {
			_, target, _ := strings.Cut(strings.TrimPrefix(hdr.Linkname, "./"), "/")
			hdr.Linkname = memberName(prefix, target, false)
		}
		var content io.Reader
		if hdr.Typeflag == tar.TypeReg {
			content = tr
		}
		if err := add(hdr, content); err != nil {
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
