package archive

import (
	"errors"
	"fmt"
	"path"
	"path/filepath"
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

// SafeJoin joins an archive member name under root for restore. It refuses
// empty, absolute and ".." names, and anything that would not stay inside
// root on this OS. It is a lexical check: write through os.Root (or
// equivalent) too, so a symlink already on disk cannot redirect the write.
func SafeJoin(root, name string) (string, error) {
	if root == "" {
		return "", errors.New("safe join: empty root")
	}
	c, err := cleanName(name, false)
	if err != nil {
		return "", fmt.Errorf("safe join: %w", err)
	}
	rel := filepath.FromSlash(c)
	if !filepath.IsLocal(rel) {
		return "", fmt.Errorf("safe join: member name %q is not local", name)
	}
	return filepath.Join(root, rel), nil
}

// CheckLink refuses a symlink member name -> linkname that points outside
// root: absolute targets, and relative ones that climb above root. A ".."
// after a plain element ("a/../..") is refused too, because if "a" is itself
// a symlink the kernel resolves ".." from a's target, not lexically.
func CheckLink(root, name, linkname string) error {
	c, err := cleanName(name, false)
	if err != nil {
		return fmt.Errorf("check link: %w", err)
	}
	if err := checkLinkTarget(c, linkname); err != nil {
		return fmt.Errorf("check link %q -> %q: %w", name, linkname, err)
	}
	// Belt and braces: the joined path must still be under root.
	target := filepath.Join(root, filepath.FromSlash(path.Dir(c)), filepath.FromSlash(linkname))
	rel, err := filepath.Rel(root, target)
	if err != nil || (!filepath.IsLocal(rel) && rel != ".") {
		return fmt.Errorf("check link %q -> %q: target leaves the restore folder", name, linkname)
	}
	return nil
}

// checkLinkTarget walks linkname from the link's folder, counting depth.
func checkLinkTarget(name, linkname string) error {
	switch {
	case linkname == "":
		return errors.New("empty target")
	case strings.ContainsRune(linkname, 0):
		return errors.New("target contains a NUL byte")
	case strings.HasPrefix(linkname, "/") || filepath.IsAbs(linkname):
		return errors.New("target is absolute")
	case filepath.Separator != '/' && strings.ContainsRune(linkname, filepath.Separator):
		return errors.New("target contains an OS path separator")
	}
	depth := strings.Count(name, "/") // folders between root and the link
	plain := false
	for _, elem := range strings.Split(linkname, "/") {
		switch elem {
		case "", ".":
		case "..":
			if plain {
				return errors.New("target has \"..\" after a folder name")
			}
			depth--
			if depth < 0 {
				return errors.New("target climbs out of the restore folder")
			}
		default:
			plain = true
		}
	}
	return nil
}

// tree tracks member names to refuse layouts a real folder cannot have and a
// restore could be tricked by: duplicates, members beneath a symlink, hard
// links to members not seen yet.
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
	if key == manifestName {
		return fmt.Errorf("member name %q is reserved", name)
	}
	if _, dup := t.kinds[key]; dup {
		return fmt.Errorf("member %q appears twice", name)
	}
	for dir := path.Dir(key); dir != "."; dir = path.Dir(dir) {
		if t.kinds[dir] == TypeSymlink {
			return fmt.Errorf("member %q is beneath symlink %q", name, dir)
		}
	}
	if typ == TypeSymlink && t.parents[key] {
		return fmt.Errorf("symlink %q is a folder of an earlier member", name)
	}
	if hardlink != "" && t.kinds[hardlink] != TypeFile {
		return fmt.Errorf("hard link %q -> %q: target is not an earlier regular file", name, hardlink)
	}
	return nil
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
