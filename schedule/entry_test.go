package schedule

import (
	"os/exec"
	"strings"
	"testing"
)

func testJob() Job {
	return Job{Project: "echo", Dir: "/srv/echo/backups 100%", Log: "/srv/echo/backups 100%/schedule.log",
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
	got, ok := Find(Put(crontab, "echo", line), "echo")
	if !ok || got.Project != "echo" || got.Dir != "/srv/echo/backups 100%" || got.Expr.String() != "0 3 * * *" {
		t.Fatalf("find: %+v %v", got, ok)
	}
	if got.Command != ShellCommand(testJob()) {
		t.Errorf("command %q", got.Command)
	}
	if _, ok := Find(crontab, "echo"); ok {
		t.Error("found an entry in a crontab without one")
	}
}

// The command is what /bin/sh runs: its words come out as given.
func TestShellCommandQuoting(t *testing.T) {
	j := Job{Log: "/dev/null", Env: map[string]string{"A": "it's $HOME"},
		Argv: []string{"/bin/sh", "-c", `printf '%s|' "$A" "$0" "$1"`, "a b", "c'd"}}
	cmd := strings.TrimSuffix(ShellCommand(j), " </dev/null >>/dev/null 2>&1")
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
	other := Job{Project: "other", Dir: "/x", Log: "/x/l", Argv: []string{"true"}}
	otherLine, _ := Line(e, other)
	for _, before := range []string{"", "MAILTO=\"\"\n", "* * * * * date\n\n# trailing comment\n", otherLine + "\n"} {
		once := Put(before, "echo", line)
		if twice := Put(once, "echo", line); twice != once {
			t.Errorf("second install changed the crontab:\n%s\n---\n%s", once, twice)
		}
		e2, _ := ParseAt("04:30")
		line2, _ := Line(e2, testJob())
		moved := Put(once, "echo", line2)
		if strings.Count(moved, Marker) != strings.Count(once, Marker) || !strings.Contains(moved, "30 4 * * *") {
			t.Errorf("reinstall at another time:\n%s", moved)
		}
		after, found := Delete(moved, "echo")
		if !found || after != before {
			t.Errorf("remove left %q, want %q", after, before)
		}
	}
	// A line without a final newline gets one before ours.
	if got := Put("* * * * * date", "echo", line); !strings.HasPrefix(got, "* * * * * date\n0 3") {
		t.Errorf("got %q", got)
	}
	// Another project's entry is not ours to remove.
	if _, found := Delete(otherLine+"\n", "echo"); found {
		t.Error("deleted another project's entry")
	}
	// A copy commented out by hand is left alone.
	if _, ok := Find("# "+line+"\n", "echo"); ok {
		t.Error("a commented-out line counts as the entry")
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
