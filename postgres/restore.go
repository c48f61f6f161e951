package postgres

import (
	"context"
	"fmt"
	"io"
	"time"
)

// WaitReady waits until the server accepts a query over TCP. pg_isready is not enough: during the
// official entrypoint's first start it answers for the temporary socket-only server.
func (t Target) WaitReady(ctx context.Context, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	var err error
	for ctx.Err() == nil {
		_, err = t.output(ctx, "psql", "-X", "-h", "127.0.0.1", "-U", t.User, "-d", t.maintenanceDB(), "-c", "SELECT 1")
		if err == nil {
			return nil
		}
		time.Sleep(300 * time.Millisecond)
	}
	return fmt.Errorf("database %q did not accept connections within %s: %w", t.Database, timeout, err)
}

// RestoreStream loads a custom-format dump read from r into the target database, stopping at
// the first error: a restore that half works must not look like one that worked.
func (t Target) RestoreStream(ctx context.Context, r io.Reader) error {
	cmd := []string{"pg_restore", "--exit-on-error", "--no-password", "-U", t.User, "-d", t.Database}
	stdin, release := feed(r)
	err := t.exec(ctx, cmd, stdin, nil)
	release()
	if err != nil {
		return fmt.Errorf("restoring into database %q: %w", t.Database, err)
	}
	return nil
}

// CountRows counts every user table's rows, as Dump does.
func (t Target) CountRows(ctx context.Context) ([]Table, error) {
	sess := t.openSession(ctx)
	tables, err := countRows(sess)
	if closeErr := sess.close(); err == nil {
		err = closeErr
	}
	return tables, err
}
