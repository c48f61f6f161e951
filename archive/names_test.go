package archive

import (
	"path/filepath"
	"runtime"
	"testing"
)

func TestSafeJoin(t *testing.T) {
	root := filepath.FromSlash("/restore")
	ok := map[string]string{
		"files/a":      "/restore/files/a",
		"files/data/":  "/restore/files/data",
		"a/./b":        "/restore/a/b",
		"./a":          "/restore/a",
		"a//b":         "/restore/a/b",
		"...":          "/restore/...",
		"..a":          "/restore/..a",
		"a..":          "/restore/a..",
		"a/..b/c":      "/restore/a/..b/c",
		"ünïcödé":      "/restore/ünïcödé",
		"with space/x": "/restore/with space/x",
	}
	if runtime.GOOS != "windows" {
		ok[`a\..\..\b`] = `/restore/a\..\..\b` // one odd file name, not a path
	}
	for name, want := range ok {
		got, err := SafeJoin(root, name)
		if err != nil || got != filepath.FromSlash(want) {
			t.Errorf("SafeJoin(%q) = %q, %v; want %q", name, got, err, want)
		}
	}
	bad := []string{
		"", ".", "./", "..", "../", "../x", "a/..", "a/../b", "a/../../x", "a/b/../../..",
		"/etc/passwd", "//etc/passwd", "x\x00y", "files/../../../etc/shadow",
	}
	if runtime.GOOS == "windows" {
		bad = append(bad, `C:\x`, `C:x`, `a\..\..\b`, `\\server\share\x`, "NUL")
	}
	for _, name := range bad {
		if got, err := SafeJoin(root, name); err == nil {
			t.Errorf("SafeJoin(%q) = %q, want an error", name, got)
		}
	}
	if _, err := SafeJoin("", "a"); err == nil {
		t.Error("SafeJoin accepted an empty root")
	}
}

func TestCheckLink(t *testing.T) {
	root := filepath.FromSlash("/restore")
	cases := []struct {
		name, link string
		ok         bool
	}{
		{"files/a/link", "target", true},
		{"files/a/link", "./target", true},
		{"files/a/link", ".", true},
		{"files/a/link", "..", true},
		{"files/a/link", "../b", true},
		{"files/a/link", "../../x", true}, // climbs to root, not above
		{"files/a/link", "sub/dir/", true},
		{"files/a/link", "../../files/a/x", true},
		{"top", "x", true},
		{"top", ".", true},

		{"files/a/link", "/etc/passwd", false},
		{"files/a/link", "//etc", false},
		{"files/a/link", "../../..", false},
		{"files/a/link", "../../../etc", false},
		{"files/a/link", "../../x/../../y", false},
		{"files/a/link", "b/../c", false}, // ".." after a name: b may be a symlink
		{"files/a/link", "b/../../../..", false},
		{"files/a/link", "", false},
		{"files/a/link", "x\x00", false},
		{"top", "..", false},
		{"top", "../x", false},
		{"top", "./../x", false},
		{"../evil", "x", false},
		{"/abs", "x", false},
		{"", "x", false},
		{"a/../b", "x", false},
	}
	for _, c := range cases {
		err := CheckLink(root, c.name, c.link)
		if (err == nil) != c.ok {
			t.Errorf("CheckLink(%q, %q) = %v, want ok=%v", c.name, c.link, err, c.ok)
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
