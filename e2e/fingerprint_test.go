//go:build e2e

package e2e

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"testing"
)

// Fingerprint is a comparable summary: sorted lines "kind name key=value ...". Two
// fingerprints are equal when a restore (or anything else) kept what they summarise.
type Fingerprint struct {
	Lines []string
}

func (f Fingerprint) String() string { return strings.Join(f.Lines, "\n") }

// Equal tells whether both hold the same lines.
func (f Fingerprint) Equal(g Fingerprint) bool { return f.String() == g.String() }

// Diff lists the lines only in f ("- ") and only in g ("+ "); "" when equal.
func (f Fingerprint) Diff(g Fingerprint) string {
	in := func(lines []string) map[string]bool {
		m := map[string]bool{}
		for _, l := range lines {
			m[l] = true
		}
		return m
	}
	a, b := in(f.Lines), in(g.Lines)
	var out []string
	for _, l := range f.Lines {
		if !b[l] {
			out = append(out, "- "+l)
		}
	}
	for _, l := range g.Lines {
		if !a[l] {
			out = append(out, "+ "+l)
		}
	}
	return strings.Join(out, "\n")
}

// AssertSameFingerprint fails the test with a line diff when want and got differ.
func AssertSameFingerprint(t testing.TB, what string, want, got Fingerprint) {
	t.Helper()
	if !want.Equal(got) {
		t.Errorf("%s differs (- want, + got):\n%s", what, want.Diff(got))
	}
}

func newFingerprint(lines []string) Fingerprint {
	lines = append([]string(nil), lines...)
	sort.Strings(lines)
	return Fingerprint{Lines: lines}
}

// ---------------------------------------------------------------------------
// Database

// dbFingerprintSQL: per table (in primary-key order) the row count and the md5 of all rows'
// text; each sequence's last_value; and the schema objects a restore must bring back
// (indexes, constraints, enum types, views). Session settings pin the text form of values.
const dbFingerprintSQL = `
set timezone = 'UTC';
set datestyle = 'ISO, YMD';
set intervalstyle = 'postgres';
set extra_float_digits = 1;
set bytea_output = 'hex';
select format(
    'select %L || '' rows='' || count(*) || '' md5='' || md5(coalesce(string_agg(t::text, E''\n'' order by %s), '''')) from %I.%I t',
    'table ' || n.nspname || '.' || c.relname,
    coalesce((
        select string_agg(format('t.%I', a.attname), ', ' order by k.ord)
        from pg_index i
        cross join lateral unnest(i.indkey) with ordinality as k(attnum, ord)
        join pg_attribute a on a.attrelid = i.indrelid and a.attnum = k.attnum
        where i.indrelid = c.oid and i.indisprimary
    ), 't::text'),
    n.nspname, c.relname)
from pg_class c
join pg_namespace n on n.oid = c.relnamespace
where c.relkind in ('r', 'p')
  and n.nspname not in ('pg_catalog', 'information_schema') and n.nspname not like 'pg_toast%'
order by n.nspname, c.relname
\gexec
select format('sequence %s.%s last_value=%s', schemaname, sequencename, coalesce(last_value::text, 'null'))
from pg_sequences;
select format('index %s.%s %s', schemaname, indexname, indexdef)
from pg_indexes where schemaname not in ('pg_catalog', 'information_schema');
select format('constraint %s %s %s', conrelid::regclass, conname, pg_get_constraintdef(oid))
from pg_constraint where connamespace not in ('pg_catalog'::regnamespace, 'information_schema'::regnamespace);
select format('enum %s.%s %s', t.typnamespace::regnamespace, t.typname, string_agg(e.enumlabel, ',' order by e.enumsortorder))
from pg_type t join pg_enum e on e.enumtypid = t.oid group by t.typnamespace, t.typname;
select format('view %s.%s', schemaname, viewname)
from pg_views where schemaname not in ('pg_catalog', 'information_schema');
`

// FingerprintDB summarises the stack's database (see dbFingerprintSQL).
func (s *Stack) FingerprintDB() Fingerprint {
	s.t.Helper()
	return newFingerprint(nonEmptyLines(s.Psql(dbFingerprintSQL)))
}

// TableLines are the "table ..." lines of a database fingerprint.
func (f Fingerprint) TableLines() []string {
	var out []string
	for _, l := range f.Lines {
		if strings.HasPrefix(l, "table ") {
			out = append(out, l)
		}
	}
	return out
}

// ---------------------------------------------------------------------------
// Files

// FileEntry is one file, folder or symlink below a root, or the root itself (Path ".").
type FileEntry struct {
	Path   string // relative, with '/'
	Type   string // f d l p s c b
	Mode   uint32 // permission bits incl. setuid/setgid/sticky (07777)
	UID    int
	GID    int
	Size   int64  // regular files only
	SHA256 string // regular files only
	Target string // symlinks only
}

func (e FileEntry) String() string {
	s := fmt.Sprintf("file %s type=%s mode=%#o uid=%d gid=%d", strconv.Quote(e.Path), e.Type, e.Mode, e.UID, e.GID)
	switch e.Type {
	case "f":
		s += fmt.Sprintf(" size=%d sha256=%s", e.Size, e.SHA256)
	case "l":
		s += " target=" + strconv.Quote(e.Target)
	}
	return s
}

// FileSet is every entry below a root, sorted by path.
type FileSet []FileEntry

// Fingerprint of a FileSet: one line per entry.
func (fs FileSet) Fingerprint() Fingerprint {
	var lines []string
	for _, e := range fs {
		lines = append(lines, e.String())
	}
	return newFingerprint(lines)
}

// Get finds an entry by relative path.
func (fs FileSet) Get(path string) (FileEntry, bool) {
	for _, e := range fs {
		if e.Path == path {
			return e, true
		}
	}
	return FileEntry{}, false
}

// FingerprintDir walks a host folder (a bind mount's source).
func FingerprintDir(t testing.TB, root string) FileSet {
	t.Helper()
	var set FileSet
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, p) // "." for the root itself
		var st syscall.Stat_t
		if err := syscall.Lstat(p, &st); err != nil {
			return err
		}
		e := FileEntry{Path: filepath.ToSlash(rel), Mode: st.Mode & 0o7777, UID: int(st.Uid), GID: int(st.Gid)}
		switch st.Mode & syscall.S_IFMT {
		case syscall.S_IFREG:
			e.Type, e.Size = "f", st.Size
			if e.SHA256, err = sha256File(p); err != nil {
				return err
			}
		case syscall.S_IFDIR:
			e.Type = "d"
		case syscall.S_IFLNK:
			e.Type = "l"
			if e.Target, err = os.Readlink(p); err != nil {
				return err
			}
		case syscall.S_IFIFO:
			e.Type = "p"
		case syscall.S_IFSOCK:
			e.Type = "s"
		case syscall.S_IFCHR:
			e.Type = "c"
		case syscall.S_IFBLK:
			e.Type = "b"
		}
		set = append(set, e)
		return nil
	})
	if err != nil {
		t.Fatalf("fingerprinting %s: %v", root, err)
	}
	sort.Slice(set, func(i, j int) bool { return set[i].Path < set[j].Path })
	return set
}

func sha256File(p string) (string, error) {
	f, err := os.Open(p)
	if err != nil {
		return "", err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", err
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// volumeListing prints, NUL-separated: per entry (the root's PATH is empty) "TYPE MODE UID GID SIZE PATH" then the
// symlink target; then a "SHA256" marker; then sha256sum --zero of every regular file.
const volumeListing = `set -e
cd /v
find . -printf '%y %#m %U %G %s %P\0%l\0'
printf 'SHA256\0'
find . -type f -print0 | xargs -0 -r sha256sum --zero`

// FingerprintVolume reads a volume (or an absolute host folder) through a short-lived,
// read-only container of the test image.
func (s *Stack) FingerprintVolume(volume string) FileSet {
	s.t.Helper()
	if !filepath.IsAbs(volume) {
		// `docker run -v NAME:...` would create a missing volume: refuse instead.
		s.MustDocker("volume", "inspect", "--format", "{{.Name}}", volume)
	}
	args := append([]string{"run", "--rm", "--network", "none"}, s.HarnessLabels()...)
	args = append(args, "-v", volume+":/v:ro", "--entrypoint", "sh", pgImage, "-c", volumeListing)
	r := s.Run(RunOpts{Quiet: true}, "docker", args...)
	if r.Code != 0 {
		s.t.Fatalf("listing volume %s: exit %d: %s", volume, r.Code, r.Stderr)
	}
	set, err := parseVolumeListing([]byte(r.Stdout))
	if err != nil {
		s.t.Fatalf("listing volume %s: %v", volume, err)
	}
	return set
}

func parseVolumeListing(out []byte) (FileSet, error) {
	fields := bytes.Split(out, []byte{0})
	var set FileSet
	byPath := map[string]int{}
	i := 0
	for ; i < len(fields); i += 2 {
		rec := string(fields[i])
		if rec == "SHA256" {
			i++
			break
		}
		if i+1 >= len(fields) {
			return nil, fmt.Errorf("truncated listing at %q", rec)
		}
		parts := strings.SplitN(rec, " ", 6)
		if len(parts) != 6 {
			return nil, fmt.Errorf("bad listing record %q", rec)
		}
		mode, err1 := strconv.ParseUint(parts[1], 8, 32)
		uid, err2 := strconv.Atoi(parts[2])
		gid, err3 := strconv.Atoi(parts[3])
		size, err4 := strconv.ParseInt(parts[4], 10, 64)
		if err := firstErr(err1, err2, err3, err4); err != nil {
			return nil, fmt.Errorf("bad listing record %q: %v", rec, err)
		}
		if parts[5] == "" {
			parts[5] = "." // the root itself
		}
		e := FileEntry{Path: parts[5], Type: parts[0], Mode: uint32(mode), UID: uid, GID: gid}
		switch e.Type {
		case "f":
			e.Size = size
		case "l":
			e.Target = string(fields[i+1])
		}
		byPath[e.Path] = len(set)
		set = append(set, e)
	}
	for ; i < len(fields); i++ {
		rec := string(fields[i])
		if rec == "" {
			continue
		}
		sum, path, ok := strings.Cut(rec, "  ")
		if !ok {
			return nil, fmt.Errorf("bad sha256sum record %q", rec)
		}
		path = strings.TrimPrefix(path, "./")
		j, ok := byPath[path]
		if !ok {
			return nil, fmt.Errorf("sha256sum of unlisted file %q", path)
		}
		set[j].SHA256 = sum
	}
	sort.Slice(set, func(i, j int) bool { return set[i].Path < set[j].Path })
	return set, nil
}

func firstErr(errs ...error) error {
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}

// FingerprintData reads Echo's /app/data of the stack: the host folder for a ./data bind,
// the volume otherwise.
func (s *Stack) FingerprintData() FileSet {
	s.t.Helper()
	if s.DataVolume == "" {
		return FingerprintDir(s.t, s.DataDir())
	}
	return s.FingerprintVolume(s.Volume(s.DataVolume))
}
