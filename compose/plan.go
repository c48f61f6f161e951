package compose

import (
	"fmt"
	"path"
	"path/filepath"
	"slices"
	"sort"
	"strings"

	"github.com/compose-spec/compose-go/v2/types"
)

// Role says what a service or a mount is to an Echo deployment, and so how it is backed up.
type Role string

const (
	RoleDatabase   Role = "database"   // dumped with pg_dump, never copied as files
	RoleCache      Role = "cache"      // regenerable: not backed up
	RoleApp        Role = "app"        // the services that use the data
	RoleData       Role = "data"       // folders and volumes the app writes: backed up as files
	RoleMedia      Role = "media"      // read-only mounts such as a music library: the user's, not Echo's
	RoleDeployment Role = "deployment" // compose files and .env: what rebuilds a bare server
	RoleOther      Role = "other"      // anonymous volumes, tmpfs: recreated by compose
)

// RoleLabel lets a user say on a service what it is, where the image does not tell.
const RoleLabel = "com.echobackup.role"

// Plan is what a backup of the project contains and what it leaves out, and why.
type Plan struct {
	Project     *types.Project `json:"-"`
	Name        string         `json:"project"`
	WorkingDir  string         `json:"workingDir"`
	ConfigFiles []string       `json:"configFiles"`
	EnvFiles    []string       `json:"envFiles,omitempty"`
	Database    *Database      `json:"database"`
	Services    []Service      `json:"services"`
	Items       []Item         `json:"items"`
}

// Database is the PostgreSQL service and how to reach it inside its container.
type Database struct {
	Service  string `json:"service"`
	Image    string `json:"image"`
	User     string `json:"user"`
	Name     string `json:"name"`
	Password string `json:"-"`
	Volume   string `json:"volume,omitempty"` // real engine name of the data volume
	DataDir  string `json:"dataDir"`
}

// Service is one compose service with what the engine says about it.
type Service struct {
	Name       string      `json:"name"`
	Role       Role        `json:"role"`
	Image      string      `json:"image"`
	DependsOn  []string    `json:"dependsOn,omitempty"`
	Containers []Container `json:"containers"`
}

// Running is true when at least one of the service's containers runs.
func (s Service) Running() bool {
	for _, c := range s.Containers {
		if c.State == "running" {
			return true
		}
	}
	return false
}

// Kind is what an Item is.
type Kind string

const (
	KindBind       Kind = "bind"       // a host folder
	KindVolume     Kind = "volume"     // a named volume
	KindDeployment Kind = "deployment" // the compose and env files
	KindTmpfs      Kind = "tmpfs"
)

// Item is one thing that holds state: a bind mount, a named volume, or the deployment files.
type Item struct {
	Service  string `json:"service,omitempty"`
	Kind     Kind   `json:"kind"`
	Source   string `json:"source"`           // host path or real volume name
	Key      string `json:"key,omitempty"`    // the volume's key in the compose file
	Target   string `json:"target,omitempty"` // path inside the container
	ReadOnly bool   `json:"readOnly,omitempty"`
	External bool   `json:"external,omitempty"`
	Role     Role   `json:"role"`
	Backup   bool   `json:"backup"`
	Reason   string `json:"reason"`
	Size     int64  `json:"size,omitempty"`
	Files    int    `json:"files,omitempty"` // entries below a local folder, counted with its size
	Exists   bool   `json:"exists"`
	// Inspected is false for bind folders on a remote engine, which this machine cannot see.
	Inspected bool `json:"-"`
}

// NewPlan decides the role of every service and mount. dbService overrides the detection of the
// PostgreSQL service; it needs no engine, so it can be tested on compose files alone.
func NewPlan(p *types.Project, dbService string) (*Plan, error) {
	db, err := findDatabase(p, dbService)
	if err != nil {
		return nil, err
	}
	plan := &Plan{Project: p, Name: p.Name, WorkingDir: p.WorkingDir, ConfigFiles: p.ComposeFiles, Database: db}
	plan.EnvFiles = envFiles(p)
	for _, name := range sortedServiceNames(p) {
		svc := p.Services[name]
		role := serviceRole(svc, db)
		plan.Services = append(plan.Services, Service{Name: name, Role: role, Image: svc.Image, DependsOn: dependsOn(svc)})
		for _, m := range svc.Volumes {
			plan.addMount(p, svc, role, m)
		}
	}
	plan.Items = append(plan.Items, deploymentItem(p, plan.EnvFiles))
	return plan, nil
}

func sortedServiceNames(p *types.Project) []string {
	names := p.ServiceNames()
	sort.Strings(names)
	return names
}

func dependsOn(svc types.ServiceConfig) []string {
	var deps []string
	for name := range svc.DependsOn {
		deps = append(deps, name)
	}
	sort.Strings(deps)
	return deps
}

func serviceRole(svc types.ServiceConfig, db *Database) Role {
	switch {
	case svc.Name == db.Service:
		return RoleDatabase
	case svc.Labels[RoleLabel] != "":
		return Role(svc.Labels[RoleLabel])
	case isCache(svc):
		return RoleCache
	}
	return RoleApp
}

// DataVolumes are the named volumes that hold the project's data or its database and exist
// now, sorted and each once. They are what the guard holds and what a backup must save before
// they are deleted. External ones are in: compose's down -v leaves them, but volume rm and the
// prunes do not. A volume that does not exist yet is left out: the guard would create it by
// mounting it, without compose's labels, and compose would then refuse it as not its own.
func (plan *Plan) DataVolumes() []string {
	var names []string
	for _, it := range plan.Items {
		if it.Kind == types.VolumeTypeVolume && it.Exists && (it.Role == RoleData || it.Role == RoleDatabase) {
			names = append(names, it.Source)
		}
	}
	sort.Strings(names)
	return slices.Compact(names)
}

// External tells whether the named volume is declared external (compose never removes it).
func (plan *Plan) External(volume string) bool {
	return slices.ContainsFunc(plan.Items, func(it Item) bool {
		return it.Kind == types.VolumeTypeVolume && it.Source == volume && it.External
	})
}

func (plan *Plan) addMount(p *types.Project, svc types.ServiceConfig, role Role, m types.ServiceVolumeConfig) {
	it := Item{Service: svc.Name, Kind: Kind(m.Type), Source: m.Source, Target: m.Target, ReadOnly: m.ReadOnly}
	if m.Type == types.VolumeTypeVolume && m.Source != "" {
		it.Key = m.Source
		if v, ok := p.Volumes[m.Source]; ok {
			it.Source = v.Name
			it.External = bool(v.External)
		}
	}
	it.Role, it.Backup, it.Reason = mountRole(svc, role, m, plan.Database)
	if it.Role == RoleDatabase && it.Kind == types.VolumeTypeVolume {
		plan.Database.Volume = it.Source
	}
	plan.Items = append(plan.Items, it)
}

// mountRole decides whether a mount is saved. The order matters: a read-only mount is the user's
// media even on the app service, and anything of the database is saved by pg_dump instead.
func mountRole(svc types.ServiceConfig, role Role, m types.ServiceVolumeConfig, db *Database) (Role, bool, string) {
	switch {
	case m.Type != types.VolumeTypeBind && m.Type != types.VolumeTypeVolume:
		return RoleOther, false, m.Type + " mount: recreated by compose"
	case m.Type == types.VolumeTypeVolume && m.Source == "":
		return RoleOther, false, "anonymous volume: recreated by compose"
	case role == RoleDatabase && isUnder(db.DataDir, m.Target):
		return RoleDatabase, true, "saved with pg_dump"
	case role == RoleCache:
		return RoleCache, false, "regenerable cache"
	case m.ReadOnly:
		return RoleMedia, false, "read-only mount: the user's media, not Echo's data"
	case role == RoleDatabase:
		return RoleOther, false, "database service mount outside its data folder"
	case m.Type == types.VolumeTypeBind && isSpecialPath(m.Source):
		return RoleOther, false, "system path"
	}
	return RoleData, true, "saved as files"
}

// isUnder is true when dir is mount or lies below it (postgres:18 mounts /var/lib/postgresql
// and keeps PGDATA in a versioned folder below).
func isUnder(dir, mount string) bool {
	dir, mount = path.Clean(dir), path.Clean(mount)
	return dir == mount || strings.HasPrefix(dir, mount+"/")
}

func isSpecialPath(src string) bool {
	for _, p := range []string{"/var/run/docker.sock", "/run/docker.sock", "/proc", "/sys", "/dev", "/etc/localtime", "/etc/timezone"} {
		if isUnder(src, p) {
			return true
		}
	}
	return false
}

// isCache recognises the cache by the program it runs (entrypoint or command, also inside
// `sh -c`) or, where that is the image's default, by its image.
func isCache(svc types.ServiceConfig) bool {
	caches := []string{"redis", "valkey", "keydb", "memcached", "dragonfly"}
	return slices.ContainsFunc(programs(svc), func(prog string) bool {
		if prog == imageDefault {
			return nameHasAny(imageName(svc.Image), caches...)
		}
		return nameHasAny(prog, caches...) && !strings.HasSuffix(prog, "-cli") && !strings.HasSuffix(prog, "-benchmark")
	})
}

// imageName is the repository's last path element without tag or digest: "postgres" for
// "docker.io/library/postgres:16@sha256:…".
func imageName(image string) string {
	image = strings.SplitN(image, "@", 2)[0]
	base := path.Base(image)
	return strings.ToLower(strings.SplitN(base, ":", 2)[0])
}

func envFiles(p *types.Project) []string {
	seen := map[string]bool{}
	var files []string
	add := func(f string) {
		if f != "" && !seen[f] && fileExists(f) {
			seen[f] = true
			files = append(files, f)
		}
	}
	add(filepath.Join(p.WorkingDir, ".env"))
	for _, name := range sortedServiceNames(p) {
		for _, ef := range p.Services[name].EnvFiles {
			add(ef.Path)
		}
	}
	return files
}

func deploymentItem(p *types.Project, envs []string) Item {
	return Item{Kind: KindDeployment, Source: p.WorkingDir, Role: RoleDeployment, Backup: true,
		Reason: fmt.Sprintf("%d compose file(s) and %d env file(s)", len(p.ComposeFiles), len(envs))}
}
