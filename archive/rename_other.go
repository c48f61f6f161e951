//go:build !linux

package archive

// renameNoReplace renames, failing with fs.ErrExist if newpath exists.
func renameNoReplace(oldpath, newpath string) error {
	return linkRename(oldpath, newpath)
}
