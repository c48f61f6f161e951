package archive

import (
	"archive/tar"
	"errors"
	"fmt"
	"path"
	"strings"
)

// cleanName returns the archive form of a member name: slash-separated,
// relative, cleaned, with a trailing slash for directories. It refuses names
// that could land outside the restore folder, even ones that path.Clean would
// tame ("a/../b"), because such a name in a backup means something is wrong.
func cleanName(name string, dir bool) (string, error) {
	switch {
	case name == "":
		return "", errors.New("empty member name")
	case strings.ContainsRune(name, 0):
		return "", fmt.Errorf("member name %q contains a NUL byte", name)
	case strings.HasPrefix(name, "/"):
		return "", fmt.Errorf("member name %q is absolute", name)
	}
	for _, elem := range strings.Split(name, "/") {
		if elem == ".." {
			return "", fmt.Errorf("member name %q contains \"..\"", name)
		}
	}
	c := path.Clean(name)
	if c == "." {
		return "", fmt.Errorf("member name %q names the archive root", name)
	}
	if dir {
		c += "/"
	}
	return c, nil
}

// tree tracks member names to refuse layouts a real folder cannot have and a
// restore could be tricked by: duplicates, members beneath a symlink or a
// file, hard links to members not seen yet or in another source. These are
// the only rules about what a restore may write: the writer applies them as
// it adds members and Walk as it reads them, so a backup that saved and
// verified can be restored. A symlink's target is data and is never checked:
// restore creates the link as saved and never writes through one.
type tree struct {
	kinds   map[string]string // name without trailing slash -> member type
	parents map[string]bool   // every folder some member lives in
}

func newTree() *tree {
	return &tree{kinds: map[string]string{}, parents: map[string]bool{}}
}

// check reports why name (in archive form) cannot be added; it changes nothing.
func (t *tree) check(name, typ, hardlink string) error {
	key := strings.TrimSuffix(name, "/")
	if key == manifestName || key == headerName {
		return fmt.Errorf("member name %q is reserved", name)
	}
	if _, dup := t.kinds[key]; dup {
		return fmt.Errorf("member %q appears twice", name)
	}
	for dir := path.Dir(key); dir != "."; dir = path.Dir(dir) {
		switch kind := t.kinds[dir]; kind {
		case "", TypeDir:
		case TypeSymlink:
			return fmt.Errorf("member %q is beneath symlink %q", name, dir)
		default:
			return fmt.Errorf("member %q is beneath %q, which is not a folder", name, dir)
		}
	}
	if typ != TypeDir && t.parents[key] {
		return fmt.Errorf("%s %q is a folder of an earlier member", typ, name)
	}
	if hardlink == "" {
		return nil
	}
	if t.kinds[hardlink] != TypeFile {
		return fmt.Errorf("hard link %q -> %q: target is not an earlier regular file", name, hardlink)
	}
	if sourceOf(hardlink) != sourceOf(key) {
		return fmt.Errorf("hard link %q -> %q: target is in another folder of the backup", name, hardlink)
	}
	return nil
}

// sourceOf is the part of a member name that says which folder or volume it
// came from: "files/<source>" for data, else the first element. A restore
// writes each source on its own, so a hard link cannot cross them.
func sourceOf(name string) string {
	first, rest, _ := strings.Cut(name, "/")
	if first != "files" {
		return first
	}
	second, _, below := strings.Cut(rest, "/")
	if !below {
		return first // only folders stand at this level in a real backup
	}
	return first + "/" + second
}

// add records name; call check first.
func (t *tree) add(name, typ string) {
	key := strings.TrimSuffix(name, "/")
	t.kinds[key] = typ
	for dir := path.Dir(key); dir != "." && !t.parents[dir]; dir = path.Dir(dir) {
		t.parents[dir] = true
	}
}

// forget drops a name whose member was never written.
func (t *tree) forget(name string) {
	delete(t.kinds, strings.TrimSuffix(name, "/"))
}

// Layout applies the archive's rules to members one by one, for a writer of its own: a
// restore's staging checks every member it writes with it, so that a tar that did not come
// from an archive of ours (the manual procedure's tar of ./data) is held to the same rules.
type Layout struct{ names *tree }

// NewLayout starts an empty layout.
func NewLayout() *Layout { return &Layout{names: newTree()} }

// Check refuses hdr if its name is not clean and relative, or the archive's rules refuse it
// after the members checked before; otherwise it records it.
func (l *Layout) Check(hdr *tar.Header) error {
	typ, err := memberType(hdr.Typeflag)
	if err != nil {
		return fmt.Errorf("member %q: %w", hdr.Name, err)
	}
	name, err := cleanName(hdr.Name, hdr.Typeflag == tar.TypeDir)
	if err != nil {
		return err
	}
	hardlink := ""
	if hdr.Typeflag == tar.TypeLink {
		if hardlink, err = cleanName(hdr.Linkname, false); err != nil {
			return fmt.Errorf("hard link %q: %w", hdr.Name, err)
		}
	}
	if err := l.names.check(name, typ, hardlink); err != nil {
		return err
	}
	l.names.add(name, typ)
	return nil
}
