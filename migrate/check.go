package migrate

import (
	"context"
	"fmt"
	"path/filepath"
	"slices"
	"strings"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/mount"
	"github.com/moby/moby/client"

	"github.com/echo-backup/echo-backup/compose"
	"github.com/echo-backup/echo-backup/engine"
	"github.com/echo-backup/echo-backup/postgres"
)

// missingImages are the services' images the target engine does not have. Nothing is pulled:
// the user decides where the target's images come from.
func (t *Target) missingImages(ctx context.Context) ([]string, error) {
	var missing []string
	for _, s := range t.Plan.Services {
		if s.Image == "" || slices.Contains(missing, s.Image) {
			continue
		}
		_, err := t.API.ImageInspect(ctx, s.Image)
		if cerrdefs.IsNotFound(err) {
			missing = append(missing, s.Image)
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("inspecting image %s on context %q: %w", s.Image, t.Context, err)
		}
	}
	return missing, nil
}

// checkMajor asks the target's database image which PostgreSQL it holds: pg_restore cannot
// read a dump made by a newer major, and a server must not be downgraded under its data.
func (t *Target) checkMajor(ctx context.Context, sourceServer string) error {
	out, err := t.helperOutput(ctx, nil, "postgres --version 2>/dev/null || pg_config --version")
	if err != nil {
		return fmt.Errorf("asking image %s on context %q for its PostgreSQL version: %w", t.Plan.Database.Image, t.Context, err)
	}
	have, want := postgres.Major(out), postgres.Major(sourceServer)
	if have == 0 {
		return fmt.Errorf("image %s on context %q reports no PostgreSQL version (%q)", t.Plan.Database.Image, t.Context, out)
	}
	if have < want {
		return &compose.UserError{Err: fmt.Errorf("context %q has PostgreSQL %d (%s) and the source runs %s: "+
			"the target's database image must not be older; nothing was changed", t.Context, have, out, sourceServer)}
	}
	return nil
}

// occupied lists what the target already holds: a database with tables, or a data folder or
// volume that is not empty. When the tables cannot be read (a server that is not running, or
// one set up with another user, which holds data for sure) the target counts as holding data,
// and the database's volume is looked into to say what.
func (t *Target) occupied(ctx context.Context) ([]string, error) {
	var found []string
	db, dbErr := t.Plan.DatabaseContainer()
	unread := ""
	if dbErr == nil {
		pg := postgres.Target{API: t.API, Container: db.ID, User: t.Plan.Database.User,
			Database: t.Plan.Database.Name, Password: t.Plan.Database.Password}
		tables, err := pg.CountRows(ctx)
		switch {
		case err == nil && len(tables) > 0:
			found = append(found, fmt.Sprintf("database %q (%d tables)", t.Plan.Database.Name, len(tables)))
		case err != nil && !databaseMissing(err, t.Plan.Database.Name):
			unread = oneLine(err.Error())
			found = append(found, fmt.Sprintf("database %q, whose tables could not be read (%s)", t.Plan.Database.Name, unread))
		}
	}
	for _, it := range t.Plan.Items {
		ofDB := it.Role == compose.RoleDatabase && (dbErr != nil || unread != "")
		if !ofDB && (it.Role != compose.RoleData || !it.Backup) {
			continue
		}
		full, err := t.notEmpty(ctx, it)
		if err != nil {
			return nil, err
		}
		switch {
		case full && dbErr != nil && ofDB:
			found = append(found, fmt.Sprintf("%s %s of the database, which is not running", it.Kind, it.Source))
		case full && ofDB:
			found = append(found, fmt.Sprintf("%s %s of the database", it.Kind, it.Source))
		case full:
			found = append(found, string(it.Kind)+" "+it.Source)
		}
	}
	return found, nil
}

// databaseMissing is true for PostgreSQL's answer that the project's database does not exist
// (a server set up without it), and only for that: `role "x" does not exist` means a server
// set up by another user, which holds data.
func databaseMissing(err error, name string) bool {
	return strings.Contains(err.Error(), `database "`+name+`" does not exist`)
}

// oneLine fits psql's multi-line error into the list of what the target holds.
func oneLine(s string) string {
	return strings.Join(strings.Fields(s), " ")
}

// notEmpty looks into a data folder or volume through a read-only helper on the target. A
// missing volume is not mounted (that would create it); a missing folder is empty.
func (t *Target) notEmpty(ctx context.Context, it compose.Item) (bool, error) {
	m := mount.Mount{Type: mount.TypeBind, Source: it.Source, Target: "/echobackup/x", ReadOnly: true}
	if it.Kind == "volume" {
		if !it.Exists {
			return false, nil
		}
		m.Type = mount.TypeVolume
	}
	out, err := t.helperOutput(ctx, []mount.Mount{m}, "ls -A /echobackup/x | head -n 1")
	if err != nil && it.Kind == "bind" && strings.Contains(err.Error(), "does not exist") {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("looking into %s %s on context %q: %w", it.Kind, it.Source, t.Context, err)
	}
	return out != "", nil
}

// helperOutput runs a shell script in a helper container of the database image on the target
// and returns its standard output.
func (t *Target) helperOutput(ctx context.Context, mounts []mount.Mount, script string) (string, error) {
	h, err := engine.CreateHelper(ctx, t.API, engine.HelperOptions{Project: t.Plan.Name, Image: t.Plan.Database.Image,
		Mounts: mounts, Cmd: []string{"sh", "-c", script}, Purpose: "migrate-check"})
	if err != nil {
		return "", err
	}
	defer h.Remove()
	wait := t.API.ContainerWait(ctx, h.ID, client.ContainerWaitOptions{Condition: container.WaitConditionNextExit})
	if err := h.Start(ctx); err != nil {
		return "", err
	}
	var code int64
	select {
	case res := <-wait.Result:
		code = res.StatusCode
	case err := <-wait.Error:
		return "", fmt.Errorf("waiting for a helper container: %w", err)
	}
	stdout, stderr := h.Output()
	if code != 0 {
		return "", fmt.Errorf("%q exited %d: %s", script, code, stderr)
	}
	return strings.TrimSpace(stdout), nil
}

// LabelTo marks the backup a migration took with the context it went to.
const LabelTo = "migrate-to"

// SafetyDir is where a restore on the target keeps its safety backup: beside the source's
// backups, in a folder named after the context, so `restore latest` here never picks it.
func SafetyDir(dir, contextName string) string {
	return filepath.Join(dir, contextName)
}
