package compose

import (
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"

	"github.com/compose-spec/compose-go/v2/types"
)

const defaultPGData = "/var/lib/postgresql/data"

// findDatabase picks the PostgreSQL service: the one the user named, else the one
// chooseDatabase finds.
func findDatabase(p *types.Project, override string) (*Database, error) {
	if override != "" {
		svc, ok := p.Services[override]
		if !ok {
			return nil, &UserError{Err: fmt.Errorf("--db-service %q is not a service of project %q (services: %s)",
				override, p.Name, strings.Join(sortedServiceNames(p), ", "))}
		}
		return newDatabase(svc), nil
	}
	d := chooseDatabase(p.Services)
	switch {
	case d.Service != "":
		return newDatabase(p.Services[d.Service]), nil
	case len(d.Tied) > 0:
		return nil, &UserError{Err: fmt.Errorf("several services look like PostgreSQL (%s): choose one with --db-service",
			strings.Join(d.Tied, ", "))}
	}
	var others string
	if len(d.RunOther) > 0 {
		others = fmt.Sprintf("; not postgres by their entrypoint or command: %s", strings.Join(d.RunOther, ", "))
	}
	return nil, &UserError{Err: fmt.Errorf("%w in project %q (services: %s%s): "+
		"name it with --db-service or the label %s=database", ErrNoDatabase, p.Name, strings.Join(sortedServiceNames(p), ", "),
		others, RoleLabel)}
}

// ErrNoDatabase: the project has no PostgreSQL service, so it is not an Echo deployment.
var ErrNoDatabase = errors.New("no PostgreSQL service found")

// dbChoice is chooseDatabase's answer: the service, or the candidates that tie; RunOther are
// services that look like PostgreSQL but were set aside for what they run.
type dbChoice struct {
	Service  string
	Tied     []string
	RunOther []string
}

// chooseDatabase decides as a careful reader of the compose file would: a service labelled
// com.echobackup.role=database wins; otherwise among the services that look like PostgreSQL
// and do not run something else, the one with the most evidence (see evidence.weight).
func chooseDatabase(services types.Services) dbChoice {
	var labelled, candidates []string
	weights := map[string]int{}
	var d dbChoice
	for name, svc := range services {
		if hasDatabaseLabel(svc) {
			labelled = append(labelled, name)
		}
		e := databaseEvidence(svc)
		switch {
		case e.looksLike() && e.runsOther:
			d.RunOther = append(d.RunOther, name)
		case e.looksLike():
			candidates = append(candidates, name)
			weights[name] = e.weight()
		}
	}
	sort.Strings(d.RunOther)
	if len(labelled) > 0 {
		candidates, weights = labelled, nil // labels are the user's word: nothing weighs against them
	}
	best := -1
	for _, name := range candidates {
		switch w := weights[name]; {
		case w > best:
			best, d.Tied = w, []string{name}
		case w == best:
			d.Tied = append(d.Tied, name)
		}
	}
	sort.Strings(d.Tied)
	if len(d.Tied) == 1 {
		d.Service, d.Tied = d.Tied[0], nil
	}
	return d
}

func hasDatabaseLabel(svc types.ServiceConfig) bool {
	return svc.Labels[RoleLabel] == string(RoleDatabase)
}

// evidence is what a service's compose definition says about it being the PostgreSQL server.
type evidence struct {
	runsOther   bool // its entrypoint or command starts something else: a cache, a pg_dump loop, sleep
	runsServer  bool // its entrypoint or command names postgres itself
	image       bool // a PostgreSQL image by name
	password    bool // POSTGRES_PASSWORD or _FILE: what the official entrypoint requires to initialise
	dataVolume  bool // a writable volume or folder mounted at PGDATA
	healthcheck bool // a healthcheck calling pg_isready
}

// looksLike: what makes a service a candidate at all. The volume and the healthcheck only
// weigh between candidates: a client can wait for the server with pg_isready too.
func (e evidence) looksLike() bool { return e.image || e.runsServer || e.password }

// weight counts the evidence, one each: ties are broken by the service that has more of it.
func (e evidence) weight() int {
	n := 0
	for _, b := range []bool{e.runsServer, e.image, e.password, e.dataVolume, e.healthcheck} {
		if b {
			n++
		}
	}
	return n
}

func databaseEvidence(svc types.ServiceConfig) evidence {
	var e evidence
	progs := programs(svc)
	e.runsServer = slices.ContainsFunc(progs, isPostgresServer)
	e.runsOther = !e.runsServer && !slices.Contains(progs, imageDefault)
	e.image = nameHasAny(imageName(svc.Image), "postgres", "postgis", "timescaledb", "pgvector")
	e.password = hasPostgresPassword(svc)
	pgdata := envValue(svc, "PGDATA", defaultPGData)
	for _, m := range svc.Volumes {
		if (m.Type == types.VolumeTypeVolume || m.Type == types.VolumeTypeBind) && !m.ReadOnly && isUnder(pgdata, m.Target) {
			e.dataVolume = true
		}
	}
	if hc := svc.HealthCheck; hc != nil && !hc.Disable && len(hc.Test) > 0 && hc.Test[0] != "NONE" {
		e.healthcheck = strings.Contains(strings.Join(hc.Test, " "), "pg_isready")
	}
	return e
}

func nameHasAny(name string, parts ...string) bool {
	for _, p := range parts {
		if strings.Contains(name, p) {
			return true
		}
	}
	return false
}

// hasPostgresPassword catches locally built images; POSTGRES_PASSWORD is what the official
// entrypoint requires, while an app may well carry POSTGRES_HOST or POSTGRES_USER to connect.
func hasPostgresPassword(svc types.ServiceConfig) bool {
	_, pw := svc.Environment["POSTGRES_PASSWORD"]
	_, pwFile := svc.Environment["POSTGRES_PASSWORD_FILE"]
	_, host := svc.Environment["POSTGRES_HOST"]
	return (pw || pwFile) && !host
}

func envValue(svc types.ServiceConfig, k, def string) string {
	if v, ok := svc.Environment[k]; ok && v != nil && *v != "" {
		return *v
	}
	return def
}

// newDatabase applies the official image's defaults: user postgres, database named after the user.
func newDatabase(svc types.ServiceConfig) *Database {
	env := func(k, def string) string { return envValue(svc, k, def) }
	user := env("POSTGRES_USER", "postgres")
	return &Database{
		Service:  svc.Name,
		Image:    svc.Image,
		User:     user,
		Name:     env("POSTGRES_DB", user),
		Password: env("POSTGRES_PASSWORD", ""),
		DataDir:  env("PGDATA", defaultPGData),
	}
}
