package files

import (
	"archive/tar"
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"time"

	"golang.org/x/sys/unix"
)

// Extractor writes a source's members into a folder of this machine as they were saved:
// owners and groups by number, modes with setuid, setgid and sticky, mtimes, symlinks with
// their targets as saved (absolute, climbing out, dangling: a link is data), hard links as
// links, and the holes of sparse files. Every name is resolved beneath the folder through
// os.Root, which never lets a path leave it, and files are created exclusively, so nothing
// is written through a link. It needs root, as restoring owners does.
type Extractor struct {
	// KeepOwners gives entries their saved owners, which only root may do; NewExtractor sets
	// it, a test restore as another user clears it.
	KeepOwners bool
	root       *os.Root
	dirs       []dirAttrs // applied at Close, in reverse, so writing into them cannot change them
	buf        []byte
}

type dirAttrs struct {
	name string
	hdr  tar.Header
}

// NewExtractor writes beneath dir, which must exist and be empty.
func NewExtractor(dir string) (*Extractor, error) {
	root, err := os.OpenRoot(dir)
	if err != nil {
		return nil, fmt.Errorf("opening %s to restore into: %w", dir, err)
	}
	return &Extractor{KeepOwners: true, root: root, buf: make([]byte, 256<<10)}, nil
}

// Add writes one member. name is its path inside the folder; for a hard link, hdr.Linkname
// is the target's path inside the folder. sparse says the content has holes to punch.
func (x *Extractor) Add(name string, hdr *tar.Header, r io.Reader, sparse bool) error {
	var err error
	switch hdr.Typeflag {
	case tar.TypeDir:
		err = x.dir(name, hdr)
	case tar.TypeReg:
		err = x.file(name, hdr, r, sparse)
	case tar.TypeSymlink:
		err = x.symlink(name, hdr)
	case tar.TypeLink:
		err = x.root.Link(hdr.Linkname, name)
	case tar.TypeFifo, tar.TypeChar, tar.TypeBlock:
		err = x.node(name, hdr) // archives of format 1 could hold them
	default:
		err = fmt.Errorf("unsupported tar type %q", hdr.Typeflag)
	}
	if err != nil {
		return fmt.Errorf("restoring %s: %w", name, err)
	}
	return nil
}

func (x *Extractor) dir(name string, hdr *tar.Header) error {
	if err := x.root.Mkdir(name, 0o700); err != nil && !errors.Is(err, os.ErrExist) {
		return err
	}
	x.dirs = append(x.dirs, dirAttrs{name: name, hdr: *hdr})
	return nil
}

func (x *Extractor) file(name string, hdr *tar.Header, r io.Reader, sparse bool) error {
	f, err := x.root.OpenFile(name, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	err = x.content(f, hdr.Size, r, sparse)
	// chown clears setuid and setgid, so the mode comes after it.
	if x.KeepOwners {
		err = errors.Join(err, f.Chown(hdr.Uid, hdr.Gid))
	}
	err = errors.Join(err, f.Chmod(hdr.FileInfo().Mode()), f.Close())
	if err != nil {
		return err
	}
	return x.root.Chtimes(name, hdr.ModTime, hdr.ModTime)
}

// holeBlock is the unit in which zeros become holes again: the file system's block.
const holeBlock = 4096

func (x *Extractor) content(f *os.File, size int64, r io.Reader, sparse bool) error {
	if r == nil {
		r = bytes.NewReader(nil)
	}
	if !sparse {
		n, err := io.CopyBuffer(f, io.LimitReader(r, size), x.buf)
		if err == nil && n != size {
			err = fmt.Errorf("content ended after %d of %d bytes", n, size)
		}
		return err
	}
	// The archive keeps only the data of a sparse file; reading gives zeros for the holes,
	// and a block of zeros is skipped rather than written.
	var off int64
	blk := x.buf[:holeBlock]
	for off < size {
		n, err := io.ReadFull(r, blk[:min(int64(holeBlock), size-off)])
		if err != nil {
			return fmt.Errorf("content ended after %d of %d bytes: %w", off+int64(n), size, err)
		}
		if !allZero(blk[:n]) {
			if _, err := f.WriteAt(blk[:n], off); err != nil {
				return err
			}
		}
		off += int64(n)
	}
	return f.Truncate(size)
}

func allZero(b []byte) bool {
	for _, c := range b {
		if c != 0 {
			return false
		}
	}
	return true
}

func (x *Extractor) symlink(name string, hdr *tar.Header) error {
	if err := x.root.Symlink(hdr.Linkname, name); err != nil {
		return err
	}
	if err := x.lchown(name, hdr); err != nil {
		return err
	}
	return x.inParent(name, func(dirfd int, base string) error {
		ts := []unix.Timespec{unix.NsecToTimespec(hdr.ModTime.UnixNano()), unix.NsecToTimespec(hdr.ModTime.UnixNano())}
		return unix.UtimesNanoAt(dirfd, base, ts, unix.AT_SYMLINK_NOFOLLOW)
	})
}

func (x *Extractor) node(name string, hdr *tar.Header) error {
	mode := uint32(hdr.Mode & 0o7777)
	switch hdr.Typeflag {
	case tar.TypeFifo:
		mode |= unix.S_IFIFO
	case tar.TypeChar:
		mode |= unix.S_IFCHR
	case tar.TypeBlock:
		mode |= unix.S_IFBLK
	}
	dev := unix.Mkdev(uint32(hdr.Devmajor), uint32(hdr.Devminor))
	err := x.inParent(name, func(dirfd int, base string) error {
		if err := unix.Mknodat(dirfd, base, mode, int(dev)); err != nil {
			return err
		}
		return nil
	})
	return errors.Join(err, x.lchown(name, hdr))
}

func (x *Extractor) lchown(name string, hdr *tar.Header) error {
	if !x.KeepOwners {
		return nil
	}
	return x.root.Lchown(name, hdr.Uid, hdr.Gid)
}

// inParent runs fn on the folder that holds name, opened beneath the root: the *at system
// calls that os.Root does not offer (times of a link itself, device nodes) then cannot
// follow anything either.
func (x *Extractor) inParent(name string, fn func(dirfd int, base string) error) error {
	dir, err := x.root.OpenFile(path.Dir(name), unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW, 0)
	if err != nil {
		return err
	}
	defer dir.Close()
	return fn(int(dir.Fd()), path.Base(name))
}

// Close gives the folders their owners, modes and mtimes, the deepest first: writing into a
// folder changes its mtime, and a read-only folder could not be written into.
func (x *Extractor) Close() error {
	var errs []error
	for i := len(x.dirs) - 1; i >= 0; i-- {
		d := x.dirs[i]
		errs = append(errs, x.lchown(d.name, &d.hdr),
			x.root.Chmod(d.name, d.hdr.FileInfo().Mode()),
			x.root.Chtimes(d.name, time.Now(), d.hdr.ModTime))
	}
	errs = append(errs, x.root.Close())
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("setting folder attributes: %w", err)
	}
	return nil
}
