package backup

import (
	"archive/tar"
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"sync"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/echo-backup/echo-backup/archive"
	"github.com/echo-backup/echo-backup/compose"
	"github.com/echo-backup/echo-backup/engine"
	"github.com/echo-backup/echo-backup/postgres"
	"github.com/echo-backup/echo-backup/repository"
)

// VerifyOptions say which archive to check and with which engine.
type VerifyOptions struct {
	Path string
	// Repo, when set, is where the backup is, with Snapshot its ID; Path is then only its name.
	Repo     *repository.Repository
	Snapshot string
	Deep     bool
	API      compose.Engine
	// DBContainer is the project's running database container, used for pg_restore --list;
	// empty: a throwaway container from the image in the manifest.
	DBContainer string
}

// VerifyResult is what verify checked.
type VerifyResult struct {
	Path       string       `json:"path"`
	Members    int          `json:"members"`
	TOCEntries int          `json:"tocEntries"`
	Deep       bool         `json:"deep"`
	Tables     []TableCheck `json:"tables,omitempty"`
	// FilesRestored counts the entries a deep check restored into a scratch folder and compared.
	FilesRestored int  `json:"filesRestored,omitempty"`
	OK            bool `json:"ok"`
}

// TableCheck compares a table's rows after a deep restore with the manifest.
type TableCheck struct {
	Table    string `json:"table"`
	Expected int64  `json:"expected"`
	Restored int64  `json:"restored"`
}

// Verify reads the archive end to end: every member's size and sha256, the dump's table of
// contents, and with Deep a full restore into a throwaway server with row counts compared.
func Verify(ctx context.Context, o VerifyOptions) (*VerifyResult, error) {
	src := verified(ctx, o)
	m, err := src.manifest()
	if err != nil {
		return nil, fmt.Errorf("verifying %s: %w", o.Path, err)
	}
	if m.Database == nil {
		return nil, fmt.Errorf("verifying %s: the manifest names no database dump", o.Path)
	}
	pg, cleanup, err := verifyTarget(ctx, o, m)
	if err != nil {
		return nil, err
	}
	defer cleanup()
	res := &VerifyResult{Path: o.Path, Deep: o.Deep}
	defer func() {
		// A failure replaces an earlier OK: list must not show a damaged file as verified.
		src.record(time.Now().UTC(), o.Deep, res.OK)
	}()
	if err := walkAndCheck(ctx, o, src, m, pg, res); err != nil {
		return res, fmt.Errorf("verifying %s: %w", o.Path, err)
	}
	if o.Deep {
		if err := compareRows(ctx, pg, m, res); err != nil {
			return res, fmt.Errorf("verifying %s: %w", o.Path, err)
		}
	}
	res.OK = true
	return res, nil
}

// walkAndCheck reads the whole archive once: the dump goes to pg_restore, and with Deep the
// files to a test restore that is compared with the archive at the end.
func walkAndCheck(ctx context.Context, o VerifyOptions, src verifySource, m *archive.Manifest, pg postgres.Target, res *VerifyResult) error {
	var trial *fileTrial
	if o.Deep {
		var err error
		if trial, err = newFileTrial(src.scratch(), m.Sources); err != nil {
			return err
		}
		defer trial.remove()
	}
	sums := memberSums(m)
	var mu sync.Mutex // a stream file's dump is handed on from another goroutine
	err := src.walk(func(hdr *tar.Header, r io.Reader) error {
		mu.Lock()
		res.Members++
		mu.Unlock()
		if hdr.Name == m.Database.Member {
			return checkDump(ctx, pg, o.Deep, r, res)
		}
		if trial != nil {
			return trial.add(hdr, r, sums[hdr.Name])
		}
		return nil
	})
	if err != nil || trial == nil {
		return err
	}
	if err := trial.check(ctx); err != nil {
		return fmt.Errorf("test restore of the files: %w", err)
	}
	res.FilesRestored = len(trial.want)
	return nil
}

func memberSums(m *archive.Manifest) map[string]string {
	sums := make(map[string]string, len(m.Members))
	for _, mem := range m.Members {
		sums[mem.Name] = mem.SHA256
	}
	return sums
}

func checkDump(ctx context.Context, pg postgres.Target, deep bool, r io.Reader, res *VerifyResult) error {
	if !deep {
		n, err := pg.CheckTOC(ctx, r)
		res.TOCEntries = n
		return err
	}
	tocR, tocW := io.Pipe()
	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error {
		n, err := pg.CheckTOC(gctx, tocR)
		res.TOCEntries = n
		return err
	})
	g.Go(func() error {
		err := pg.RestoreStream(gctx, io.TeeReader(r, tocW))
		tocW.CloseWithError(err)
		return err
	})
	return g.Wait()
}

func compareRows(ctx context.Context, pg postgres.Target, m *archive.Manifest, res *VerifyResult) error {
	checks, err := CheckRows(ctx, pg, m.Database.Tables)
	res.Tables = checks
	return err
}

// CheckRows counts the rows of a restored database and compares them with the manifest's.
func CheckRows(ctx context.Context, pg postgres.Target, want []archive.Table) ([]TableCheck, error) {
	got, err := pg.CountRows(ctx)
	if err != nil {
		return nil, fmt.Errorf("counting restored rows: %w", err)
	}
	restored := map[string]int64{}
	for _, t := range got {
		restored[t.Schema+"."+t.Name] = t.Rows
	}
	var checks []TableCheck
	var bad []string
	for _, t := range want {
		key := t.Schema + "." + t.Name
		checks = append(checks, TableCheck{Table: key, Expected: t.Rows, Restored: restored[key]})
		if restored[key] != t.Rows {
			bad = append(bad, fmt.Sprintf("%s: %d rows in the backup, %d restored", key, t.Rows, restored[key]))
		}
	}
	if len(bad) > 0 {
		return checks, &archive.VerifyError{Problems: bad}
	}
	return checks, nil
}

// verifyTarget picks where pg_restore runs: a throwaway PostgreSQL server from the backup's own
// image for a deep check, else the project's database container, else a throwaway container.
func verifyTarget(ctx context.Context, o VerifyOptions, m *archive.Manifest) (postgres.Target, func(), error) {
	t := postgres.Target{API: o.API, Container: o.DBContainer, User: m.Database.User, Database: m.Database.Name}
	if !o.Deep && o.DBContainer != "" {
		return t, func() {}, nil
	}
	image := databaseImage(m)
	if image == "" {
		return t, nil, fmt.Errorf("verifying %s: the manifest names no database image", o.Path)
	}
	hopts := engine.HelperOptions{Project: m.Project.Name, Image: image, Purpose: "verify",
		Cmd: []string{"sleep", "86400"}}
	if o.Deep {
		t.Password = randomPassword()
		hopts.KeepEntrypoint, hopts.Cmd = true, []string{"postgres"}
		hopts.Env = []string{"POSTGRES_USER=" + t.User, "POSTGRES_DB=" + t.Database, "POSTGRES_PASSWORD=" + t.Password}
	}
	h, err := engine.CreateHelper(ctx, o.API, hopts)
	if err != nil {
		return t, nil, err
	}
	cleanup := func() { _ = h.Remove() }
	t.Container = h.ID
	if err := h.Start(ctx); err != nil {
		cleanup()
		return t, nil, err
	}
	if o.Deep {
		if err := t.WaitReady(ctx, 2*time.Minute); err != nil {
			cleanup()
			return t, nil, err
		}
	}
	return t, cleanup, nil
}

func databaseImage(m *archive.Manifest) string {
	for _, s := range m.Project.Services {
		if s.Name == m.Database.Service {
			return s.Image
		}
	}
	return ""
}

func randomPassword() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}
