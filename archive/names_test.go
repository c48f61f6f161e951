package archive

import (
	"archive/tar"
	"testing"
)

// TestMemberNames: the names a restore may write, relative and clean, whatever the bytes.
func TestMemberNames(t *testing.T) {
	ok := map[string]string{
		"files/a":      "files/a",
		"files/data/":  "files/data",
		"a/./b":        "a/b",
		"./a":          "a",
		"a//b":         "a/b",
		"...":          "...",
		"..a":          "..a",
		"a..":          "a..",
		"a/..b/c":      "a/..b/c",
		"ünïcödé":      "ünïcödé",
		"with space/x": "with space/x",
		`a\..\..\b`:    `a\..\..\b`, // one odd file name, not a path
	}
	for name, want := range ok {
		if got, err := cleanName(name, false); err != nil || got != want {
			t.Errorf("cleanName(%q) = %q, %v; want %q", name, got, err, want)
		}
	}
	bad := []string{
		"", ".", "./", "..", "../", "../x", "a/..", "a/../b", "a/../../x", "a/b/../../..",
		"/etc/passwd", "//etc/passwd", "x\x00y", "files/../../../etc/shadow",
	}
	for _, name := range bad {
		if got, err := cleanName(name, false); err == nil {
			t.Errorf("cleanName(%q) = %q, want an error", name, got)
		}
	}
}

// TestTreeRules: the rules that writer, Walk and restore share. A link's
// target is data, whatever it says; what is refused is a layout that would
// make a restore write through a link or outside a source.
func TestTreeRules(t *testing.T) {
	type add struct {
		name, typ, hardlink string
	}
	cases := []struct {
		what  string
		setup []add
		try   add
		ok    bool
	}{
		{"absolute symlink", nil, add{"files/a/link", TypeSymlink, ""}, true},
		{"file beneath a symlink", []add{{"files/a/l", TypeSymlink, ""}}, add{"files/a/l/x", TypeFile, ""}, false},
		{"file beneath a file", []add{{"files/a/f", TypeFile, ""}}, add{"files/a/f/x", TypeFile, ""}, false},
		{"folder beneath a file", []add{{"files/a/f", TypeFile, ""}}, add{"files/a/f/d/", TypeDir, ""}, false},
		{"file beneath a folder", []add{{"files/a/d", TypeDir, ""}}, add{"files/a/d/x", TypeFile, ""}, true},
		{"symlink over a used folder", []add{{"files/a/d/x", TypeFile, ""}}, add{"files/a/d", TypeSymlink, ""}, false},
		{"file over a used folder", []add{{"files/a/d/x", TypeFile, ""}}, add{"files/a/d", TypeFile, ""}, false},
		{"duplicate", []add{{"files/a/x", TypeFile, ""}}, add{"files/a/x", TypeFile, ""}, false},
		{"hard link in its folder", []add{{"files/a/x", TypeFile, ""}}, add{"files/a/sub/y", TypeOther, "files/a/x"}, true},
		{"hard link to another source", []add{{"files/b/x", TypeFile, ""}}, add{"files/a/y", TypeOther, "files/b/x"}, false},
		{"hard link to a later file", nil, add{"files/a/y", TypeOther, "files/a/x"}, false},
		{"hard link to a symlink", []add{{"files/a/x", TypeSymlink, ""}}, add{"files/a/y", TypeOther, "files/a/x"}, false},
		{"reserved name", nil, add{"manifest.json", TypeFile, ""}, false},
	}
	for _, c := range cases {
		tr := newTree()
		for _, a := range c.setup {
			if err := tr.check(a.name, a.typ, a.hardlink); err != nil {
				t.Fatalf("%s: setup %q: %v", c.what, a.name, err)
			}
			tr.add(a.name, a.typ)
		}
		if err := tr.check(c.try.name, c.try.typ, c.try.hardlink); (err == nil) != c.ok {
			t.Errorf("%s: check(%q) = %v, want ok=%v", c.what, c.try.name, err, c.ok)
		}
	}
}

func TestCleanName(t *testing.T) {
	cases := []struct {
		in   string
		dir  bool
		want string
	}{
		{"files/a", false, "files/a"},
		{"./files//a", false, "files/a"},
		{"files/d", true, "files/d/"},
		{"files/d/", true, "files/d/"},
		{"files/d/./", true, "files/d/"},
	}
	for _, c := range cases {
		if got, err := cleanName(c.in, c.dir); err != nil || got != c.want {
			t.Errorf("cleanName(%q, %v) = %q, %v; want %q", c.in, c.dir, got, err, c.want)
		}
	}
}

// TestLayout: the check staging applies to every member, also from tars of other tools.
func TestLayout(t *testing.T) {
	l := NewLayout()
	ok := []tar.Header{
		{Typeflag: tar.TypeDir, Name: "files/data/"},
		{Typeflag: tar.TypeSymlink, Name: "files/data/library", Linkname: "/music"},
		{Typeflag: tar.TypeSymlink, Name: "files/data/up", Linkname: "../../.."},
		{Typeflag: tar.TypeReg, Name: "files/data/a"},
		{Typeflag: tar.TypeLink, Name: "files/data/b", Linkname: "files/data/a"},
	}
	for _, h := range ok {
		if err := l.Check(&h); err != nil {
			t.Errorf("Check(%q): %v", h.Name, err)
		}
	}
	bad := []tar.Header{
		{Typeflag: tar.TypeReg, Name: "files/data/library/x"}, // written through a link
		{Typeflag: tar.TypeDir, Name: "files/data/up/etc/"},
		{Typeflag: tar.TypeReg, Name: "files/data/a/x"},
		{Typeflag: tar.TypeReg, Name: "/etc/passwd"},
		{Typeflag: tar.TypeReg, Name: "files/data/../../x"},
		{Typeflag: tar.TypeLink, Name: "files/data/c", Linkname: "../etc/shadow"},
		{Typeflag: tar.TypeLink, Name: "files/data/d", Linkname: "files/other/a"},
		{Typeflag: tar.TypeReg, Name: "files/data/a"},
	}
	for _, h := range bad {
		if err := l.Check(&h); err == nil {
			t.Errorf("Check accepted %q -> %q", h.Name, h.Linkname)
		}
	}
}
