package hooks

import (
	"strings"
	"testing"
	"time"

	clihooks "github.com/docker/cli/cli-plugins/hooks"
	"github.com/spf13/cobra"

	"github.com/echo-backup/echo-backup/store"
)

// render runs a hint through the docker CLI's own hook template code, as the CLI does after
// the hooked command, and joins the lines it prints.
func render(t *testing.T, template string) string {
	t.Helper()
	lines, err := clihooks.ParseTemplate(template, &cobra.Command{Use: "down"})
	if err != nil {
		t.Fatalf("the CLI rejects the hint %q: %v", template, err)
	}
	return strings.Join(lines, "\n")
}

// TestHintBraces: a backup path with braces comes out of the CLI's template exactly, so the
// restore command it shows can be pasted.
func TestHintBraces(t *testing.T) {
	now := time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)
	path := "/mnt/{{nas}}/x}}{{{/echo-20261126T110000Z.tar.zst"
	text := lastBackup("/srv/echo", now, store.Entry{Path: path, Project: "echo", Created: now.Add(-time.Hour)})
	if !strings.Contains(text, "restore '"+path+"'") {
		t.Fatalf("the restore command does not quote the path: %s", text)
	}
	if got := render(t, literal(text)); got != text {
		t.Errorf("the CLI shows\n%s\nwant\n%s", got, text)
	}
	for _, s := range []string{"", "plain", "{{", "}}", "{{{{", "{{.Name}}", `{{"x"}}`, "{ {{ } }}"} {
		if got := render(t, literal(s)); got != s {
			t.Errorf("%q renders as %q", s, got)
		}
	}
}

// TestHintNoBackupBraces: the warning names a backup folder with braces as it is.
func TestHintNoBackupBraces(t *testing.T) {
	dir := t.TempDir() + "/{{backups}}"
	t.Setenv(store.DirEnv, dir)
	got := render(t, Hint(t.TempDir(), time.Now()))
	if !strings.Contains(got, "no echobackup backup in "+dir+":") {
		t.Errorf("the CLI shows %q", got)
	}
}
