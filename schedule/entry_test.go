package schedule

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

func testJob() Job {
	return Job{Project: "echo", Folder: "/srv/echo", Dir: "/srv/echo/backups 100%", Log: "/srv/echo/backups 100%/schedule.log",
		Env:  map[string]string{"DOCKER_CONFIG": "/tmp/it's here", "DOCKER_HOST": "unix:///run/docker.sock"},
		Argv: []string{"/usr/bin/docker", "echobackup", "--project-directory", "/srv/echo", "schedule", "run", "-o", "/srv/echo/backups 100%"}}
}

func TestLineRoundTrip(t *testing.T) {
	e, _ := ParseAt("03:00")
	line, err := Line(e, testJob())
	if err != nil {
		t.Fatal(err)
	}
	if strings.Count(line, "%") != strings.Count(line, `\%`) {
		t.Errorf("an unescaped %% would end the command: %s", line)
	}
	if !strings.HasPrefix(line, "0 3 * * * DOCKER_CONFIG=") {
		t.Errorf("line %s", line)
	}
	crontab := "MAILTO=me@example.org\n# my own job\n15 * * * * /usr/local/bin/mine --flag\n"
	got, ok := FindIn(Put(crontab, "echo", "/srv/echo", line), "echo", "/srv/echo")
	if !ok || got.Project != "echo" || got.Dir != "/srv/echo/backups 100%" || got.Expr.String() != "0 3 * * *" {
		t.Fatalf("find: %+v %v", got, ok)
	}
	if got.Command != ShellCommand(testJob()) {
		t.Errorf("command %q", got.Command)
	}
	if _, ok := FindIn(crontab, "echo", "/srv/echo"); ok {
		t.Error("found an entry in a crontab without one")
	}
}

// The command is what /bin/sh runs: its words come out as given.
func TestShellCommandQuoting(t *testing.T) {
	j := Job{Log: "/dev/null", Env: map[string]string{"A": "it's $HOME"},
		Argv: []string{"/bin/sh", "-c", `printf '%s|' "$A" "$0" "$1"`, "a b", "c'd"}}
	cmd := strings.TrimSuffix(ShellCommand(j), " </dev/null >>/dev/null 2>&1")
	if !strings.HasPrefix(cmd, "A='it'\\''s $HOME' exec /bin/sh ") {
		t.Errorf("command %s", cmd)
	}
	out, err := exec.Command("/bin/sh", "-c", cmd).Output()
	if err != nil {
		t.Fatal(err)
	}
	if string(out) != "it's $HOME|a b|c'd|" {
		t.Errorf("got %q", out)
	}
}

func TestPutIsIdempotentAndDeleteExact(t *testing.T) {
	e, _ := ParseAt("03:00")
	line, _ := Line(e, testJob())
	other := Job{Project: "other", Folder: "/x", Dir: "/x", Log: "/x/l", Argv: []string{"true"}}
	otherLine, _ := Line(e, other)
	for _, before := range []string{"", "MAILTO=\"\"\n", "* * * * * date\n\n# trailing comment\n", otherLine + "\n"} {
		once := Put(before, "echo", "/srv/echo", line)
		if twice := Put(once, "echo", "/srv/echo", line); twice != once {
			t.Errorf("second install changed the crontab:\n%s\n---\n%s", once, twice)
		}
		e2, _ := ParseAt("04:30")
		line2, _ := Line(e2, testJob())
		moved := Put(once, "echo", "/srv/echo", line2)
		if strings.Count(moved, Marker) != strings.Count(once, Marker) || !strings.Contains(moved, "30 4 * * *") {
			t.Errorf("reinstall at another time:\n%s", moved)
		}
		after, found := Delete(moved, "echo", "/srv/echo")
		if !found || after != before {
			t.Errorf("remove left %q, want %q", after, before)
		}
	}
	// A line without a final newline gets one before ours.
	if got := Put("* * * * * date", "echo", "/srv/echo", line); !strings.HasPrefix(got, "* * * * * date\n0 3") {
		t.Errorf("got %q", got)
	}
	// Another project's entry is not ours to remove.
	if _, found := Delete(otherLine+"\n", "echo", "/srv/echo"); found {
		t.Error("deleted another project's entry")
	}
	// A copy commented out by hand is left alone.
	if _, ok := FindIn("# "+line+"\n", "echo", "/srv/echo"); ok {
		t.Error("a commented-out line counts as the entry")
	}
}

// Two folders may hold projects of the same name: each keeps its own line, and install and
// remove in one folder leave the other's alone.
func TestSameNameInTwoFolders(t *testing.T) {
	e, _ := ParseAt("03:00")
	a := testJob()
	b := testJob()
	b.Folder, b.Dir, b.Log = "/home/me/echo", "/home/me/echo/backups", "/home/me/echo/backups/schedule.log"
	lineA, _ := Line(e, a)
	lineB, _ := Line(e, b)
	both := Put(Put("", "echo", a.Folder, lineA), "echo", b.Folder, lineB)
	if strings.Count(both, Marker) != 2 {
		t.Fatalf("the second folder's install replaced the first's:\n%s", both)
	}
	if got, ok := FindIn(both, "echo", b.Folder); !ok || got.Dir != b.Dir || got.Folder != b.Folder {
		t.Errorf("find in the second folder: %+v %v", got, ok)
	}
	if others := Others(both, "echo", a.Folder); len(others) != 1 || others[0].Folder != b.Folder {
		t.Errorf("others of the first folder: %+v", others)
	}
	onlyA, found := Delete(both, "echo", b.Folder)
	if !found || onlyA != lineA+"\n" {
		t.Errorf("remove in the second folder left %q", onlyA)
	}
	// An entry written before the folder was recorded is the entry of every folder of that name.
	legacy := strings.Replace(lineA, `"folder":"/srv/echo",`, "", 1)
	if legacy == lineA {
		t.Fatalf("no folder in %s", lineA)
	}
	if got := Put(legacy+"\n", "echo", b.Folder, lineB); got != lineB+"\n" {
		t.Errorf("install over an entry without a folder: %q", got)
	}
}

// The shell cron starts must not outlive its start: its command line, environment included, is
// in the process list for everyone to read.
func TestShellExecs(t *testing.T) {
	out := filepath.Join(t.TempDir(), "out")
	j := Job{Log: out, Env: map[string]string{"SECRET": "s3cret"},
		Argv: []string{"/bin/sh", "-c", `tr '\0' ' ' </proc/$PPID/cmdline; echo "|$SECRET"`}}
	if err := exec.Command("/bin/sh", "-c", ShellCommand(j)).Run(); err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(out)
	if parent, env, _ := strings.Cut(string(b), "|"); strings.Contains(parent, "s3cret") || strings.TrimSpace(env) != "s3cret" {
		t.Errorf("the job's parent is %q and its SECRET %q", parent, env)
	}
}

func TestOnCalendar(t *testing.T) {
	for in, want := range map[string]string{"03:00": "*-*-* 03:00:00", "23:59": "*-*-* 23:59:00", "@daily": "daily"} {
		e, _ := ParseAt(in)
		if got, err := OnCalendar(e); err != nil || got != want {
			t.Errorf("%s: %q %v", in, got, err)
		}
	}
	e, _ := ParseAt("*/5 * * * 1")
	if _, err := OnCalendar(e); err == nil {
		t.Error("a timer accepted a general cron expression")
	}
	if got := systemdQuote(`a "b" 100% $HOME \`); got != `"a \"b\" 100%% $$HOME \\"` {
		t.Errorf("systemd quote %s", got)
	}
}

// A systemd timer is named after the project only: the one of another folder of the same name
// is neither found, nor removed, nor replaced from here.
func TestTimerOfAnotherFolder(t *testing.T) {
	t.Setenv("XDG_CONFIG_HOME", t.TempDir())
	dir, _ := unitDir()
	os.MkdirAll(dir, 0o755)
	unit := filepath.Join(dir, UnitName("echo")+".service")
	text := Marker + `{"project":"echo","folder":"/srv/echo","dir":"/srv/echo/backups","schedule":"0 3 * * *"}` +
		"\n[Service]\nExecStart=/bin/sh -c \"true\"\n"
	if err := os.WriteFile(unit, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	if e, ok := FindTimer("echo", "/srv/echo"); !ok || e.Folder != "/srv/echo" || e.Expr.String() != "0 3 * * *" {
		t.Errorf("own folder: %+v %v", e, ok)
	}
	if _, ok := FindTimer("echo", "/home/me/echo"); ok {
		t.Error("found the timer of another folder")
	}
	if found, err := RemoveTimer(context.Background(), "echo", "/home/me/echo"); found || err != nil {
		t.Errorf("removed the timer of another folder: %v %v", found, err)
	}
	e, _ := ParseAt("03:00")
	j := testJob()
	j.Folder = "/home/me/echo"
	if _, err := InstallTimer(context.Background(), e, j); err == nil || !strings.Contains(err.Error(), "belongs to project echo in /srv/echo") {
		t.Errorf("install over the timer of another folder: %v", err)
	}
	if b, _ := os.ReadFile(unit); string(b) != text {
		t.Errorf("the other folder's unit changed:\n%s", b)
	}
}
