package postgres

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"

	"golang.org/x/sync/errgroup"
)

// Table is one table's row count in the dump's snapshot.
type Table struct {
	Schema string `json:"schema"`
	Name   string `json:"name"`
	Rows   int64  `json:"rows"`
}

// DumpInfo describes a finished dump.
type DumpInfo struct {
	ServerVersion string
	PgDumpVersion string
	Tables        []Table
}

// countTables counts every user table. query_to_xml runs the dynamic count inside this same
// read-only transaction, so the counts see exactly the rows pg_dump saw.
const countTables = `SELECT n.nspname, c.relname,
  (xpath('/row/c/text()', query_to_xml(format('SELECT count(*) AS c FROM %I.%I', n.nspname, c.relname), false, true, '')))[1]::text::bigint
FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE c.relkind IN ('r', 'p') AND n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg_toast%'
ORDER BY 1, 2;`

// Dump writes a custom-format dump to w. It is uncompressed (-Z0) because pg_dump compresses on
// one core; the archive's zstd does it on all of them. The row counts come from the dump's own
// snapshot, exported by a psql session that stays open until pg_dump is done.
func (t Target) Dump(ctx context.Context, w io.Writer) (*DumpInfo, error) {
	info := &DumpInfo{}
	var err error
	if info.PgDumpVersion, err = t.PgDumpVersion(ctx); err != nil {
		return nil, fmt.Errorf("running pg_dump --version: %w", err)
	}
	sess := t.openSession(ctx)
	snapshot, err := beginSnapshot(sess, info)
	if err != nil {
		sess.close()
		return nil, fmt.Errorf("opening a snapshot of database %q: %w", t.Database, err)
	}
	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error {
		cmd := []string{"pg_dump", "-Fc", "-Z0", "--no-sync", "--snapshot=" + snapshot, "-U", t.User, "-d", t.Database}
		if t.Near != nil {
			return t.dumpNear(gctx, cmd, w)
		}
		return t.exec(gctx, cmd, nil, w)
	})
	g.Go(func() error {
		tables, err := countRows(sess)
		info.Tables = tables
		return err
	})
	err = g.Wait()
	if closeErr := sess.close(); err == nil && closeErr != nil {
		err = fmt.Errorf("closing the snapshot: %w", closeErr)
	}
	return info, err
}

func beginSnapshot(sess *session, info *DumpInfo) (string, error) {
	rows, err := sess.query("BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY;\nSHOW server_version;\nSELECT pg_export_snapshot();")
	if err != nil {
		return "", err
	}
	if len(rows) != 2 {
		return "", fmt.Errorf("unexpected answer from psql: %q", rows)
	}
	info.ServerVersion = rows[0]
	return rows[1], nil
}

func countRows(sess *session) ([]Table, error) {
	rows, err := sess.query(countTables)
	if err != nil {
		return nil, fmt.Errorf("counting rows: %w", err)
	}
	tables := make([]Table, 0, len(rows))
	for _, r := range rows {
		f := strings.Split(r, "\t")
		if len(f) != 3 {
			return nil, fmt.Errorf("counting rows: unexpected line %q", r)
		}
		n, err := strconv.ParseInt(f[2], 10, 64)
		if err != nil {
			return nil, fmt.Errorf("counting rows of %s.%s: %w", f[0], f[1], err)
		}
		tables = append(tables, Table{Schema: f[0], Name: f[1], Rows: n})
	}
	return tables, nil
}

// CheckTOC feeds a custom-format dump to pg_restore --list and returns the number of entries in
// its table of contents. It reads r to the end even when pg_restore stops early, so a writer
// teeing into r never blocks.
func (t Target) CheckTOC(ctx context.Context, r io.Reader) (int, error) {
	stdin, release := feed(r)
	outR, outW := io.Pipe()
	entries := make(chan int, 1)
	go func() { entries <- countTOC(outR) }()
	err := t.exec(ctx, []string{"pg_restore", "--list"}, stdin, outW)
	outW.Close()
	release()
	n := <-entries
	if err != nil {
		return 0, fmt.Errorf("reading the dump's table of contents: %w", err)
	}
	if n == 0 {
		return 0, errors.New("the dump's table of contents is empty")
	}
	return n, nil
}

// feed hands r to a command's stdin through a pipe of its own, so that only one goroutine ever
// reads r, and r is read to the end even when the command stops early. Call release once the
// command has exited.
func feed(r io.Reader) (stdin io.Reader, release func()) {
	pr, pw := io.Pipe()
	fed := make(chan struct{})
	go func() {
		defer close(fed)
		if _, err := io.Copy(pw, r); err != nil {
			_, _ = io.Copy(io.Discard, r)
		}
		pw.Close()
	}()
	return pr, func() {
		pr.CloseWithError(errors.New("the command has exited"))
		<-fed
	}
}

// countTOC counts TOC lines; comment lines start with ";".
func countTOC(r io.Reader) int {
	n := 0
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		if line := sc.Text(); line != "" && !strings.HasPrefix(line, ";") {
			n++
		}
	}
	_, _ = io.Copy(io.Discard, r)
	return n
}
