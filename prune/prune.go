// Package prune decides which of a project's backups the retention policy no longer needs,
// then removes them, as restic does: PlanPrune lists the backup folder and decides without
// touching anything (what a dry run prints), and Plan.Execute removes what the plan says. Only
// complete backups of this deployment reach the policy (store.List drops partial, damaged
// and foreign files); those another deployment of the same name took are kept, uncounted.
package prune

import (
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"time"

	"github.com/echo-backup/echo-backup/archive"
	"github.com/echo-backup/echo-backup/retention"
	"github.com/echo-backup/echo-backup/store"
)

// Options say which backups are looked at and how they are judged.
type Options struct {
	Dir        string // the backup folder
	Project    string
	WorkingDir string // the project's folder: with the host, what tells this deployment's backups
	Policy     retention.Policy
	Now        time.Time    // zero: time.Now()
	Host       string       // "": this machine's name
	Warn       func(string) // a backup dated in the future; nil: nothing
	// OneHistory counts every backup as this deployment's: a repository holds one deployment's
	// history, whichever host saved it (the old server, before a migration).
	OneHistory bool
}

// Action is what happens to one backup.
type Action string

const (
	Keep        Action = "keep"
	Remove      Action = "remove"       // removed by Execute
	WouldRemove Action = "would-remove" // planned, not yet removed
)

// Backup is one backup with what the plan does to it and why.
type Backup struct {
	Name    string    `json:"name"`
	Path    string    `json:"path"`
	Created time.Time `json:"created"`
	Action  Action    `json:"action"`
	Why     []string  `json:"why"`
}

// Result is what prune decided and did; Removed counts files really deleted.
type Result struct {
	Dir     string           `json:"dir"`
	Policy  retention.Policy `json:"policy"`
	DryRun  bool             `json:"dryRun"`
	Backups []Backup         `json:"backups"`
	Kept    int              `json:"kept"`
	Removed int              `json:"removed"`
}

// Summary is the one line prune ends with.
func (r *Result) Summary() string {
	if r.DryRun {
		return fmt.Sprintf("Dry run: would remove %d of %d backups in %s, keep %d", len(r.Backups)-r.Kept, len(r.Backups), r.Dir, r.Kept)
	}
	return fmt.Sprintf("Removed %d of %d backups in %s, kept %d", r.Removed, len(r.Backups), r.Dir, r.Kept)
}

// sort puts another deployment's backups among ours, newest first.
func (r *Result) sort() {
	sort.SliceStable(r.Backups, func(i, j int) bool { return r.Backups[i].Created.After(r.Backups[j].Created) })
}

// Plan is the decision, before anything is removed.
type Plan struct {
	project string
	dir     string
	policy  retention.Policy
	others  []Backup // another deployment's: kept, never counted
	ours    []Backup // in the policy's order: Keep or WouldRemove
}

// PlanPrune lists the project's backups in o.Dir and applies the policy. A real prune holds
// the folder's lock from before this call until Execute returns: a restore may be reading the
// newest backup, a save committing the next one.
func PlanPrune(o Options) (*Plan, error) {
	entries, err := store.List(o.Dir, o.Project)
	if err != nil {
		return nil, fmt.Errorf("pruning the backups of project %q: %w", o.Project, err)
	}
	return Decide(entries, o), nil
}

// Decide applies the policy to entries (store.List's, newest first).
func Decide(entries []store.Entry, o Options) *Plan {
	if o.Now.IsZero() {
		o.Now = time.Now()
	}
	if o.Host == "" {
		o.Host, _ = os.Hostname()
	}
	here := deployment{host: o.Host, workingDir: o.WorkingDir}
	p := &Plan{project: o.Project, dir: o.Dir, policy: o.Policy}
	var items []retention.Item
	byName := map[string]store.Entry{}
	for _, e := range entries {
		if other := here.other(e.Manifest); other != "" && !o.OneHistory {
			p.others = append(p.others, Backup{Name: e.Name, Path: e.Path, Created: e.Created,
				Action: Keep, Why: []string{"another deployment (" + other + ")"}})
			continue
		}
		items = append(items, retention.Item{Name: e.Name, Created: e.Created, Pinned: e.Pinned,
			Verified: e.Verified != nil && e.Verified.OK})
		byName[e.Name] = e
	}
	for _, d := range retention.Apply(items, o.Policy, o.Now) {
		e := byName[d.Name]
		if d.Future && o.Warn != nil {
			o.Warn(fmt.Sprintf("%s is dated %s, in the future: it is kept and counted in no period; "+
				"check the clock of host %q, which took it", d.Name, d.Created.Local().Format(time.DateTime), e.Manifest.Host))
		}
		b := Backup{Name: d.Name, Path: e.Path, Created: d.Created, Action: Keep, Why: d.Reasons}
		if !d.Keep {
			b.Action = WouldRemove
		}
		p.ours = append(p.ours, b)
	}
	return p
}

// DryRun is the plan as prune --dry-run prints it.
func (p *Plan) DryRun() *Result {
	res := p.result(true)
	res.Backups = append(res.Backups, p.ours...)
	for _, b := range p.ours {
		if b.Action == Keep {
			res.Kept++
		}
	}
	res.sort()
	return res
}

func (p *Plan) result(dryRun bool) *Result {
	res := &Result{Dir: p.dir, Policy: p.policy, DryRun: dryRun, Backups: append([]Backup{}, p.others...), Kept: len(p.others)}
	return res
}

// Execute removes what the plan does not keep, each with its records (store.Remove). It
// stops at the first file it cannot remove; the result then lists what was done up to it.
func (p *Plan) Execute() (*Result, error) {
	return p.ExecuteWith(func(b Backup) error { return store.Remove(b.Path) })
}

// ExecuteWith is Execute with another way to remove a backup (from a repository).
func (p *Plan) ExecuteWith(remove func(Backup) error) (*Result, error) {
	res := p.result(false)
	for _, b := range p.ours {
		switch b.Action {
		case Keep:
			res.Kept++
		case WouldRemove:
			b.Action = Keep
			if err := remove(b); err != nil {
				res.Backups = append(res.Backups, b)
				res.sort()
				return res, fmt.Errorf("pruning the backups of project %q: %w", p.project, err)
			}
			b.Action = Remove
			res.Removed++
		}
		res.Backups = append(res.Backups, b)
	}
	res.sort()
	return res, nil
}

// deployment is where prune runs: this host, and the project's folder.
type deployment struct {
	host, workingDir string
}

// other is "host:folder" of a backup another deployment took, "" for one of ours. Backups
// copied from another host (the source's, after a migration) are another deployment too: they
// stay until the user removes them, which is the safe side.
func (d deployment) other(m *archive.Manifest) string {
	if m.Host == d.host && m.Host != "" && sameDir(m.Project.WorkingDir, d.workingDir) {
		return ""
	}
	return m.Host + ":" + m.Project.WorkingDir
}

// sameDir compares folders as written, then as resolved: a project reached through a symlink
// is the same deployment.
func sameDir(a, b string) bool {
	if a == "" || b == "" {
		return false
	}
	if filepath.Clean(a) == filepath.Clean(b) {
		return true
	}
	ra, errA := filepath.EvalSymlinks(a)
	rb, errB := filepath.EvalSymlinks(b)
	return errA == nil && errB == nil && ra == rb
}
