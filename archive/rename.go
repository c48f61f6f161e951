package archive

import "os"

// linkRename gives oldpath the name newpath without ever replacing an
// existing newpath: link(2) fails if newpath exists.
func linkRename(oldpath, newpath string) error {
	if err := os.Link(oldpath, newpath); err != nil {
		return err
	}
	// The backup is in place under its final name; a leftover hidden
	// .partial link is only clutter, so a failed unlink is not an error.
	_ = os.Remove(oldpath)
	return nil
}
