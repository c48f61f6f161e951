// Package postgres is the database side of a backup: it runs PostgreSQL's own tools inside the
// database service's container, so their version always matches the server's.
package postgres

import (
	"context"
	"io"
	"strconv"
	"strings"

	"github.com/echo-backup/echo-backup/engine"
)

// Target is one database inside a running container.
type Target struct {
	API       engine.Engine
	Container string
	User      string
	Database  string
	Password  string // handed to the tools through PGPASSWORD, never on a command line
	Near      *Near  // nil: tools run by exec in the database container
	options   string // PGOPTIONS for the session
}

func (t Target) env() []string {
	var env []string
	if t.Password != "" {
		env = append(env, "PGPASSWORD="+t.Password)
	}
	if t.options != "" {
		env = append(env, "PGOPTIONS="+t.options)
	}
	return env
}

func (t Target) exec(ctx context.Context, cmd []string, stdin io.Reader, stdout io.Writer) error {
	return engine.Exec(ctx, t.API, t.Container, engine.ExecOptions{Cmd: cmd, Env: t.env(), Stdin: stdin, Stdout: stdout})
}

func (t Target) output(ctx context.Context, cmd ...string) (string, error) {
	out, err := engine.Output(ctx, t.API, t.Container, engine.ExecOptions{Cmd: cmd, Env: t.env()})
	return strings.TrimSpace(out), err
}

// PgDumpVersion is what the container's pg_dump reports, e.g. "pg_dump (PostgreSQL) 16.4".
func (t Target) PgDumpVersion(ctx context.Context) (string, error) {
	return t.output(ctx, "pg_dump", "--version")
}

// Major is the major version in a version string such as "16.4 (Debian 16.4-1.pgdg120+2)"
// or "pg_dump (PostgreSQL) 15.18"; 0 when there is none.
func Major(version string) int {
	for _, f := range strings.Fields(version) {
		head, _, _ := strings.Cut(f, ".")
		if n, err := strconv.Atoi(head); err == nil {
			return n
		}
	}
	return 0
}

// DumpSize estimates how much pg_dump writes: the data of the user tables and their TOAST (the
// main fork, pg_relation_size), without the indexes, which a dump holds only as definitions,
// the free space maps, and the system catalogs, which make most of pg_database_size on a small
// database. It is a progress bar's total, not a promise.
func (t Target) DumpSize(ctx context.Context) (int64, error) {
	out, err := t.output(ctx, "psql", "-X", "-A", "-t", "-U", t.User, "-d", t.Database, "-c",
		"SELECT coalesce(sum(pg_relation_size(c.oid) + CASE WHEN c.reltoastrelid <> 0 THEN pg_relation_size(c.reltoastrelid) ELSE 0 END), 0) "+
			"FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "+
			"WHERE c.relkind IN ('r', 'm') AND n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg_toast%'")
	if err != nil {
		return 0, err
	}
	return strconv.ParseInt(out, 10, 64)
}

// Size is the database's size on disk in bytes, as pg_database_size reports it.
func (t Target) Size(ctx context.Context) (int64, error) {
	out, err := t.output(ctx, "psql", "-X", "-A", "-t", "-U", t.User, "-d", t.Database, "-c", "SELECT pg_database_size(current_database())")
	if err != nil {
		return 0, err
	}
	return strconv.ParseInt(out, 10, 64)
}
