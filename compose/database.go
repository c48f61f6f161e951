package compose

import (
	"errors"
	"fmt"
	"sort"
	"strings"

	"github.com/compose-spec/compose-go/v2/types"
)

const defaultPGData = "/var/lib/postgresql/data"

// findDatabase picks the PostgreSQL service: the one the user named, else one labelled as the
// database, else one whose image is PostgreSQL, else one configured with POSTGRES_* variables.
func findDatabase(p *types.Project, override string) (*Database, error) {
	if override != "" {
		svc, ok := p.Services[override]
		if !ok {
			return nil, &UserError{Err: fmt.Errorf("--db-service %q is not a service of project %q (services: %s)",
				override, p.Name, strings.Join(sortedServiceNames(p), ", "))}
		}
		return newDatabase(svc), nil
	}
	for _, match := range []func(types.ServiceConfig) bool{hasDatabaseLabel, hasPostgresImage, hasPostgresEnv} {
		found := matching(p, match)
		switch len(found) {
		case 1:
			return newDatabase(p.Services[found[0]]), nil
		case 0:
			continue
		}
		return nil, &UserError{Err: fmt.Errorf("several services look like PostgreSQL (%s): choose one with --db-service",
			strings.Join(found, ", "))}
	}
	return nil, &UserError{Err: fmt.Errorf("%w in project %q (services: %s): "+
		"name it with --db-service or the label %s=database", ErrNoDatabase, p.Name, strings.Join(sortedServiceNames(p), ", "), RoleLabel)}
}

// ErrNoDatabase: the project has no PostgreSQL service, so it is not an Echo deployment.
var ErrNoDatabase = errors.New("no PostgreSQL service found")

func matching(p *types.Project, match func(types.ServiceConfig) bool) []string {
	var names []string
	for name, svc := range p.Services {
		if match(svc) {
			names = append(names, name)
		}
	}
	sort.Strings(names)
	return names
}

func hasDatabaseLabel(svc types.ServiceConfig) bool {
	return svc.Labels[RoleLabel] == string(RoleDatabase)
}

// hasPostgresImage also looks at the command: the same image can run redis-server or a shell
// placeholder, and then the service is not the database.
func hasPostgresImage(svc types.ServiceConfig) bool {
	if len(svc.Command) > 0 && svc.Command[0] != "postgres" && !strings.HasPrefix(svc.Command[0], "-") {
		return false
	}
	return nameHasAny(imageName(svc.Image), "postgres", "postgis", "timescaledb", "pgvector")
}

func nameHasAny(name string, parts ...string) bool {
	for _, p := range parts {
		if strings.Contains(name, p) {
			return true
		}
	}
	return false
}

// hasPostgresEnv catches locally built images; POSTGRES_PASSWORD is what the official
// entrypoint requires, while an app may well carry POSTGRES_HOST or POSTGRES_USER to connect.
func hasPostgresEnv(svc types.ServiceConfig) bool {
	_, pw := svc.Environment["POSTGRES_PASSWORD"]
	_, host := svc.Environment["POSTGRES_HOST"]
	return pw && !host
}

// newDatabase applies the official image's defaults: user postgres, database named after the user.
func newDatabase(svc types.ServiceConfig) *Database {
	env := func(k, def string) string {
		if v, ok := svc.Environment[k]; ok && v != nil && *v != "" {
			return *v
		}
		return def
	}
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
