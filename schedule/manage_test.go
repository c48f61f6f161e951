package schedule

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// fakeCrontab puts a crontab program in PATH that keeps the table in a file, and points the
// systemd user units at an empty folder, so the tests never see the real user's schedules.
func fakeCrontab(t *testing.T, table string) string {
	t.Helper()
	dir := t.TempDir()
	file := filepath.Join(dir, "table")
	if table != "" {
		if err := os.WriteFile(file, []byte(table), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	script := "#!/bin/sh\ncase \"$1\" in\n" +
		"-l) [ -f '" + file + "' ] || { echo 'no crontab for test' >&2; exit 1; }; cat '" + file + "';;\n" +
		"-r) rm -f '" + file + "';;\n" +
		"-) cat > '" + file + "';;\n" +
		"esac\n"
	if err := os.WriteFile(filepath.Join(dir, "crontab"), []byte(script), 0o700); err != nil {
		t.Fatal(err)
	}
	t.Setenv("PATH", dir+string(os.PathListSeparator)+os.Getenv("PATH"))
	t.Setenv("XDG_CONFIG_HOME", t.TempDir())
	return file
}

func TestInstallFindRemove(t *testing.T) {
	mine := "15 * * * * /usr/local/bin/mine\n"
	file := fakeCrontab(t, mine)
	ctx := context.Background()
	expr, _ := ParseAt("03:00")
	job := testJob()
	res, err := Install(ctx, InstallOptions{Expr: expr, Job: job})
	if err != nil {
		t.Fatal(err)
	}
	if res.Kind != Crontab || len(res.Others) != 0 {
		t.Errorf("installed %+v", res)
	}
	e, kind, err := Find(ctx, job.Project, job.Folder)
	if err != nil || e == nil || kind != Crontab || e.Expr.String() != "0 3 * * *" {
		t.Fatalf("Find = %+v, %q, %v", e, kind, err)
	}
	// Installing again replaces the line.
	later, _ := ParseAt("04:30")
	if _, err := Install(ctx, InstallOptions{Expr: later, Job: job}); err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(file)
	if n := strings.Count(string(b), Marker); n != 1 || !strings.HasPrefix(string(b), mine) {
		t.Errorf("after a second install the table holds %d entries:\n%s", n, b)
	}
	removed, err := Remove(ctx, job.Project, job.Folder, func(msg string) { t.Errorf("warning: %s", msg) })
	if err != nil || len(removed) != 1 {
		t.Fatalf("Remove = %v, %v", removed, err)
	}
	if b, _ := os.ReadFile(file); string(b) != mine {
		t.Errorf("remove left %q, want the user's own line only", b)
	}
	if e, _, err := Find(ctx, job.Project, job.Folder); e != nil || err != nil {
		t.Errorf("found %+v, %v after remove", e, err)
	}
}

func TestInstallKeepsTheSameProjectInAnotherFolder(t *testing.T) {
	fakeCrontab(t, "")
	ctx := context.Background()
	expr, _ := ParseAt("03:00")
	other := testJob()
	other.Folder, other.Dir = "/srv/other", "/srv/other/backups"
	if _, err := Install(ctx, InstallOptions{Expr: expr, Job: other}); err != nil {
		t.Fatal(err)
	}
	res, err := Install(ctx, InstallOptions{Expr: expr, Job: testJob()})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Others) != 1 || res.Others[0].Folder != "/srv/other" {
		t.Errorf("others %+v", res.Others)
	}
}

func TestInstallWithoutCron(t *testing.T) {
	t.Setenv("PATH", t.TempDir())
	t.Setenv("XDG_CONFIG_HOME", t.TempDir())
	expr, _ := ParseAt("03:00")
	if _, err := Install(context.Background(), InstallOptions{Expr: expr, Job: testJob()}); err != ErrNoCrontab {
		t.Errorf("err = %v, want ErrNoCrontab as it is", err)
	}
}

func TestReadStatusHidesThePing(t *testing.T) {
	fakeCrontab(t, "")
	ctx := context.Background()
	expr, _ := ParseAt("03:00")
	job := testJob()
	job.Env[PingEnv] = "https://hc-ping.example/secret-uuid"
	if _, err := Install(ctx, InstallOptions{Expr: expr, Job: job}); err != nil {
		t.Fatal(err)
	}
	st, err := ReadStatus(ctx, job.Project, job.Folder, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	if !st.Installed || st.Kind != Crontab || st.NextRun == nil || st.Dir != job.Dir {
		t.Errorf("status %+v", st)
	}
	if strings.Contains(st.Command, "secret-uuid") || !strings.Contains(st.Command, PingEnv+"=(hidden)") {
		t.Errorf("command %q shows the ping URL", st.Command)
	}
}
