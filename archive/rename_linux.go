//go:build linux

package archive

import (
	"errors"
	"os"

	"golang.org/x/sys/unix"
)

// renameNoReplace renames atomically, failing with EEXIST (fs.ErrExist) if
// newpath exists: a backup must never replace another file.
func renameNoReplace(oldpath, newpath string) error {
	err := unix.Renameat2(unix.AT_FDCWD, oldpath, unix.AT_FDCWD, newpath, unix.RENAME_NOREPLACE)
	if err == nil {
		return nil
	}
	// Some filesystems lack RENAME_NOREPLACE; link(2) refuses to overwrite too.
	if errors.Is(err, unix.EINVAL) || errors.Is(err, unix.ENOSYS) || errors.Is(err, unix.EOPNOTSUPP) {
		return linkRename(oldpath, newpath)
	}
	return &os.LinkError{Op: "rename", Old: oldpath, New: newpath, Err: err}
}
