package postgres

import (
	"context"
	"fmt"
	"path/filepath"
	"strconv"
	"strings"
)

// Admin statements run against the maintenance database "postgres": a database cannot be
// renamed or dropped by a session connected to it.
func (t Target) admin(ctx context.Context, sql string) (string, error) {
	out, err := t.output(ctx, "psql", "-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1",
		"-U", t.User, "-d", t.maintenanceDB(), "-c", sql)
	if err != nil {
		return "", fmt.Errorf("running %q: %w", firstWords(sql), err)
	}
	return out, nil
}

// maintenanceDB is "postgres", unless that is the database being restored.
func (t Target) maintenanceDB() string {
	if t.Database == "postgres" {
		return "template1"
	}
	return "postgres"
}

func firstWords(sql string) string {
	f := strings.Fields(sql)
	return strings.Join(f[:min(len(f), 3)], " ")
}

// Quote makes an identifier safe to put into SQL.
func Quote(ident string) string {
	return `"` + strings.ReplaceAll(ident, `"`, `""`) + `"`
}

func literal(s string) string {
	return "'" + strings.ReplaceAll(s, "'", "''") + "'"
}

// ServerVersion is the server's version string, e.g. "16.4 (Debian 16.4-1.pgdg120+2)".
func (t Target) ServerVersion(ctx context.Context) (string, error) {
	return t.admin(ctx, "SHOW server_version")
}

// Exists tells whether a database of that name exists.
func (t Target) Exists(ctx context.Context, name string) (bool, error) {
	out, err := t.admin(ctx, "SELECT count(*) FROM pg_database WHERE datname = "+literal(name))
	if err != nil {
		return false, err
	}
	n, err := strconv.Atoi(out)
	return n > 0, err
}

// OID is a database's object id, which a rename keeps; 0 when no database has that name.
// A restore that resumes another's work tells its databases apart by it, not by their names.
func (t Target) OID(ctx context.Context, name string) (int64, error) {
	out, err := t.admin(ctx, "SELECT coalesce(max(oid::text::bigint), 0) FROM pg_database WHERE datname = "+literal(name))
	if err != nil {
		return 0, err
	}
	return strconv.ParseInt(out, 10, 64)
}

// NameOf is the name of the database with that object id; "" when there is none.
func (t Target) NameOf(ctx context.Context, oid int64) (string, error) {
	if oid == 0 {
		return "", nil
	}
	return t.admin(ctx, fmt.Sprintf("SELECT datname FROM pg_database WHERE oid = %d", oid))
}

// Databases lists the databases whose names start with prefix.
func (t Target) Databases(ctx context.Context, prefix string) ([]string, error) {
	out, err := t.admin(ctx, "SELECT datname FROM pg_database WHERE starts_with(datname, "+literal(prefix)+") ORDER BY 1")
	if err != nil || out == "" {
		return nil, err
	}
	return strings.Split(out, "\n"), nil
}

// Create makes an empty database owned by the target's user, from template0 so that nothing
// added to template1 gets in the way of the restore.
func (t Target) Create(ctx context.Context, name string) error {
	_, err := t.admin(ctx, fmt.Sprintf("CREATE DATABASE %s OWNER %s TEMPLATE template0", Quote(name), Quote(t.User)))
	return err
}

// Drop removes a database, ending its sessions first.
func (t Target) Drop(ctx context.Context, name string) error {
	if err := t.disconnect(ctx, name); err != nil {
		return err
	}
	_, err := t.admin(ctx, "DROP DATABASE IF EXISTS "+Quote(name))
	return err
}

// Rename renames a database, ending its sessions first (the app is stopped by then; what is
// left are stray clients that would block the rename).
func (t Target) Rename(ctx context.Context, from, to string) error {
	if err := t.disconnect(ctx, from); err != nil {
		return err
	}
	_, err := t.admin(ctx, fmt.Sprintf("ALTER DATABASE %s RENAME TO %s", Quote(from), Quote(to)))
	return err
}

func (t Target) disconnect(ctx context.Context, name string) error {
	_, err := t.admin(ctx, "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE datname = "+
		literal(name)+" AND pid <> pg_backend_pid()")
	return err
}

// runFile runs a tool whose last file argument is file: by exec in the container, or near it
// with file's folder mounted.
func (t Target) runFile(ctx context.Context, cmd []string, file string) error {
	if t.Near == nil {
		return t.exec(ctx, cmd, nil, nil)
	}
	for i, arg := range cmd {
		if arg == file {
			cmd[i] = xferMount + "/" + filepath.Base(file)
		}
	}
	return t.tool(ctx, filepath.Dir(file), cmd...)
}

// On returns the same server with another database selected.
func (t Target) On(database string) Target {
	t.Database = database
	return t
}

// restoreOptions speed up a load into a database that is not live yet: no waiting for each
// commit to reach the disk (a crash just means restoring again), more memory for index builds,
// and no parallel index workers, whose shared memory does not fit a container's 64 MB /dev/shm.
const restoreOptions = "-c synchronous_commit=off -c maintenance_work_mem=128MB -c max_parallel_maintenance_workers=0"

// RestoreFile loads a dump staged inside the container: custom format with pg_restore -j
// (parallel needs a seekable file, hence the staging), plain SQL with the container's own psql,
// which understands the \restrict lines of recent pg_dump versions.
func (t Target) RestoreFile(ctx context.Context, file string, plain bool, jobs int) error {
	cmd := []string{"pg_restore", "--exit-on-error", "--no-password", "-j", strconv.Itoa(max(jobs, 1)),
		"-U", t.User, "-d", t.Database, file}
	if plain {
		cmd = []string{"psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", "--single-transaction",
			"-U", t.User, "-d", t.Database, "-f", file}
	}
	t.options = restoreOptions
	if err := t.runFile(ctx, cmd, file); err != nil {
		return fmt.Errorf("restoring into database %q: %w", t.Database, err)
	}
	return nil
}
