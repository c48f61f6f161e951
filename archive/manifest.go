package archive

import (
	"strings"
	"time"
)

// FormatVersion is the archive format this package writes. Readers refuse
// newer formats rather than guess at them: a restore that half-understands a
// backup is worse than one that says it cannot.
const FormatVersion = 1

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
	// Members is filled in by Writer.Commit: every member after
	// manifest.json, in archive order.
	Members []Member `json:"members"`
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
