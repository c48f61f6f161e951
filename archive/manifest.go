package archive

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"
)

// FormatVersion is the archive format this package writes. Readers refuse
// newer formats rather than guess at them: a restore that half-understands a
// backup is worse than one that says it cannot. Format 2 added names that are
// not UTF-8, sparse members, links to anywhere and the list of left-out
// entries; a format 1 program would mangle or refuse those, so it must refuse
// the whole archive instead.
const FormatVersion = 2

// manifestName is the first member of every archive.
const manifestName = "manifest.json"

// Member types as recorded in the manifest.
const (
	TypeFile    = "file"
	TypeDir     = "dir"
	TypeSymlink = "symlink"
	TypeOther   = "other"
)

// Source kinds.
const (
	KindBind       = "bind"
	KindVolume     = "volume"
	KindDeployment = "deployment"
)

// Manifest describes one backup. It is the first member of the archive so
// `list` can show it without reading the body.
type Manifest struct {
	Format   int               `json:"format"`
	Tool     Tool              `json:"tool"`
	Created  time.Time         `json:"created"`
	Host     string            `json:"host"`
	Project  Project           `json:"project"`
	Database *Database         `json:"database,omitempty"`
	Sources  []Source          `json:"sources"`
	Labels   map[string]string `json:"labels,omitempty"`
	// Skipped lists what was found in the sources but cannot be kept: sockets,
	// device nodes and FIFOs are endpoints of live programs, not data.
	Skipped []Skipped `json:"skipped,omitempty"`
	// Members is filled in by Writer.Commit: every member after
	// manifest.json, in archive order.
	Members []Member `json:"members"`
	// Split lists, in the stream form, the members stored as parts (the dump); their parts
	// are in Members.
	Split []Split `json:"split,omitempty"`
	// Objects lists, in the repository form, the members kept as objects of their own beside
	// the tar of the others (the dump).
	Objects []string `json:"objects,omitempty"`
}

// Tool names the program that wrote the backup.
type Tool struct {
	Name    string `json:"name"`
	Version string `json:"version"`
}

// Project is the compose project that was backed up.
type Project struct {
	Name        string    `json:"name"`
	WorkingDir  string    `json:"working_dir"`
	ConfigFiles []string  `json:"config_files"`
	Services    []Service `json:"services"`
}

// Service is one compose service at backup time.
type Service struct {
	Name    string `json:"name"`
	Role    string `json:"role"`
	Image   string `json:"image"`
	ImageID string `json:"image_id"`
	Running bool   `json:"running"`
}

// Database describes the database dump stored in the archive.
type Database struct {
	Service       string  `json:"service"`
	Name          string  `json:"name"`
	User          string  `json:"user"`
	ServerVersion string  `json:"server_version"`
	PgDumpVersion string  `json:"pg_dump_version"`
	Member        string  `json:"member"`
	Tables        []Table `json:"tables"`
}

// Table is a row count taken at dump time, so a restore can be checked.
type Table struct {
	Schema string `json:"schema"`
	Name   string `json:"name"`
	Rows   int64  `json:"rows"`
}

// Source is one folder or volume saved under Member (an archive prefix such
// as "files/data/").
type Source struct {
	Name   string `json:"name"`
	Kind   string `json:"kind"`
	Path   string `json:"path"`
	Target string `json:"target,omitempty"`
	Member string `json:"member"`
}

// Member is one archive member as recorded in the manifest.
type Member struct {
	Name     string `json:"name"`
	Type     string `json:"type"`
	Size     int64  `json:"size"`
	SHA256   string `json:"sha256,omitempty"`
	Linkname string `json:"linkname,omitempty"`
	// Sparse: the file had holes; the archive stores only its data (GNU tar's
	// PAX sparse format 1.0) and a restore punches the holes again.
	Sparse bool `json:"sparse,omitempty"`
}

// Skipped is an entry of a source that the archive does not hold.
type Skipped struct {
	Name string `json:"name"`
	Kind string `json:"kind"` // socket, device, fifo
}

// File names are bytes; JSON strings are UTF-8 and encoding/json replaces
// anything else with U+FFFD. So a name that is not UTF-8 travels twice: a
// readable form in the usual field and its exact bytes, base64, beside it.
type memberJSON struct {
	plainMember
	NameB64     string `json:"name_b64,omitempty"`
	LinknameB64 string `json:"linkname_b64,omitempty"`
}

type plainMember Member

func (m Member) MarshalJSON() ([]byte, error) {
	out := memberJSON{plainMember: plainMember(m)}
	out.Name, out.NameB64 = encodeName(m.Name)
	out.Linkname, out.LinknameB64 = encodeName(m.Linkname)
	return json.Marshal(out)
}

func (m *Member) UnmarshalJSON(data []byte) error {
	var in memberJSON
	if err := json.Unmarshal(data, &in); err != nil {
		return err
	}
	var err error
	*m = Member(in.plainMember)
	if m.Name, err = decodeName(in.Name, in.NameB64); err != nil {
		return err
	}
	m.Linkname, err = decodeName(in.Linkname, in.LinknameB64)
	return err
}

type skippedJSON struct {
	plainSkipped
	NameB64 string `json:"name_b64,omitempty"`
}

type plainSkipped Skipped

func (s Skipped) MarshalJSON() ([]byte, error) {
	out := skippedJSON{plainSkipped: plainSkipped(s)}
	out.Name, out.NameB64 = encodeName(s.Name)
	return json.Marshal(out)
}

func (s *Skipped) UnmarshalJSON(data []byte) error {
	var in skippedJSON
	if err := json.Unmarshal(data, &in); err != nil {
		return err
	}
	*s = Skipped(in.plainSkipped)
	var err error
	s.Name, err = decodeName(in.Name, in.NameB64)
	return err
}

// encodeName returns the JSON fields for name: itself, or a readable form
// and the exact bytes when it is not UTF-8.
func encodeName(name string) (readable, b64 string) {
	if utf8.ValidString(name) {
		return name, ""
	}
	return strings.ToValidUTF8(name, "\uFFFD"), base64.StdEncoding.EncodeToString([]byte(name))
}

func decodeName(readable, b64 string) (string, error) {
	if b64 == "" {
		return readable, nil
	}
	raw, err := base64.StdEncoding.DecodeString(b64)
	if err != nil {
		return "", fmt.Errorf("name %q: bad base64 bytes: %w", readable, err)
	}
	return string(raw), nil
}

// Rows returns the total row count of the dumped tables.
func (m *Manifest) Rows() int64 {
	if m.Database == nil {
		return 0
	}
	var n int64
	for _, t := range m.Database.Tables {
		n += t.Rows
	}
	return n
}

// Files counts the regular files saved from sources (members under "files/").
func (m *Manifest) Files() int {
	n := 0
	for _, mem := range m.Members {
		if mem.Type == TypeFile && strings.HasPrefix(mem.Name, "files/") {
			n++
		}
	}
	return n
}
