package hooks

import (
	"fmt"
	"path/filepath"
	"strings"
	"time"

	"github.com/docker/go-units"

	"github.com/echo-backup/echo-backup/schedule"
	"github.com/echo-backup/echo-backup/store"
)

// Hint is the CLI's "What's next" answer after a command that deletes volumes, as the
// template the CLI reads (cli-plugins/hooks.Response.Template): the newest backup in the
// folder that save uses from cwd, and the command that restores it.
func Hint(cwd string, now time.Time) string {
	// The CLI reads the answer as a template: braces in a path must come out as typed.
	return literal(hintText(cwd, now))
}

func hintText(cwd string, now time.Time) string {
	dir := store.Dir("", cwd)
	entries, err := store.List(dir, "")
	if err != nil {
		return "WARNING: echobackup could not read the backup folder: " + err.Error()
	}
	if len(entries) == 0 {
		return fmt.Sprintf("WARNING: no echobackup backup in %s: if volumes of an Echo project were just deleted, they are gone.\n"+
			"Next time, `docker echobackup save` first (or load `docker echobackup shell-init`).", display(cwd, dir))
	}
	return lastBackup(cwd, now, entries[0])
}

func lastBackup(cwd string, now time.Time, e store.Entry) string {
	path := display(cwd, e.Path)
	verified := "not verified"
	if e.Verified != nil && e.Verified.OK {
		verified = "verified " + age(now, e.Verified.At) + " ago"
	}
	return fmt.Sprintf("Last backup of %s: %s ago (%s, %s).\nTo restore: docker echobackup -p %s restore %s",
		e.Project, age(now, e.Created), path, verified, e.Project, schedule.ShellQuote(path))
}

func age(now, t time.Time) string {
	return strings.ToLower(units.HumanDuration(now.Sub(t)))
}

// display shows a path below cwd relative to it, as the user would type it there.
func display(cwd, path string) string {
	if rel, err := filepath.Rel(cwd, path); err == nil && !strings.HasPrefix(rel, "..") {
		return "./" + rel
	}
	return path
}

// literal makes s a template of the CLI's hooks (text/template) that renders as s: each
// "{{" becomes an action printing "{{". A lone "}}" outside an action is plain text.
func literal(s string) string {
	return strings.ReplaceAll(s, "{{", `{{"{{"}}`)
}
