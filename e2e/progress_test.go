//go:build e2e

package e2e

import (
	"encoding/json"
	"regexp"
	"strings"
	"testing"
)

var (
	// compose's bar: one braille glyph per part, then "current / total"
	ttyBar   = regexp.MustCompile(`\[[⠀⡀⣀⣄⣤⣦⣶⣷⣿]+\] +\d+(\.\d+)?[kMG]?B / \d+(\.\d+)?[kMG]?B`)
	percent  = regexp.MustCompile(`\d+% \d+(\.\d+)?[kMG]?B/s`)
	ansiCode = regexp.MustCompile("\x1b\\[")
	ansiSeq  = regexp.MustCompile("\x1b\\[[0-9;?]*[A-Za-z]")
)

// progressStack is a stack whose save and restore last long enough for a terminal to be redrawn
// while they run: a database of a million plays and a 64 MB file in the data volume.
func progressStack(t *testing.T) *Stack {
	s := NewStack(t, "custom")
	s.Up()
	addPlays(t, s, 1000000)
	s.MustCompose("exec", "-T", s.AppService, "sh", "-c", "head -c 64000000 /dev/urandom > /app/data/big.bin")
	return s
}

func (s *Stack) echoBackupLine(args ...string) string {
	return "docker echobackup " + strings.Join(append(s.ProjectArgs(), args...), " ")
}

// TestProgressTerminal: under a pseudo-terminal, save and restore draw compose's progress block:
// a row per part with its bar, sizes, percentage and rate, and each part done at the end.
// Nothing of the old hand-printed "saving: … written" line is left.
func TestProgressTerminal(t *testing.T) {
	s := progressStack(t)
	r := s.underTTY(t, s.echoBackupLine("save"))
	if r.Code != 0 {
		t.Fatalf("save under a terminal: exit %d\n%s", r.Code, r.Stdout)
	}
	// script puts the terminal's output, stderr included, on its stdout; colours and cursor
	// moves are taken out to read the rows.
	out := ansiSeq.ReplaceAllString(r.Stdout, "")
	for _, want := range []string{"[+] save", `database "library"`, "volume " + s.Volume("echo_data"), "Saved", "Saved " + s.Dir} {
		if !strings.Contains(out, want) {
			t.Errorf("save under a terminal: no %q in\n%s", want, out)
		}
	}
	if !ttyBar.MatchString(out) || !percent.MatchString(out) {
		t.Errorf("save under a terminal: no bar with sizes, percentage and rate in\n%s", out)
	}
	if strings.Contains(out, "saving:") {
		t.Errorf("the old progress line is still printed:\n%s", out)
	}

	r = s.underTTY(t, s.echoBackupLine("restore", "latest", "--yes"))
	if r.Code != 0 {
		t.Fatalf("restore under a terminal: exit %d\n%s", r.Code, r.Stdout)
	}
	out = ansiSeq.ReplaceAllString(r.Stdout, "")
	for _, want := range []string{"[+] restore", `dump of database "library"`, "Staging", "Loaded and checked",
		"volume " + s.Volume("echo_data"), "safety backup", "swap", "Swapped", "Restored "} {
		if !strings.Contains(out, want) {
			t.Errorf("restore under a terminal: no %q in\n%s", want, out)
		}
	}
	if !ttyBar.MatchString(out) {
		t.Errorf("restore under a terminal: no bar with sizes in\n%s", out)
	}
}

// TestProgressPlainAndJSON: without a terminal (cron, CI) the same parts come as timed lines
// with no escape codes; --progress json gives one JSON event per line with each part started
// and ended, its bytes, and the safety backup's parts under it.
func TestProgressPlainAndJSON(t *testing.T) {
	s := progressStack(t)
	out, errOut, code := s.EchoBackup(append(s.ProjectArgs(), "save")...)
	if code != 0 {
		t.Fatalf("save: exit %d\n%s", code, errOut)
	}
	if ansiCode.MatchString(errOut) {
		t.Errorf("escape codes without a terminal:\n%q", errOut)
	}
	for _, re := range []string{
		`(?m)^\[ *\d+\.\ds\] database "library" Saving`,
		`(?m)^\[ *\d+\.\ds\] database "library" Saved \d.*B in [\d.]+m?s \d.*B/s$`,
		`(?m)^\[ *\d+\.\ds\] volume ` + s.Volume("echo_data") + ` Saved `,
	} {
		if !regexp.MustCompile(re).MatchString(errOut) {
			t.Errorf("save without a terminal: no line matching %s in\n%s", re, errOut)
		}
	}
	if !strings.HasPrefix(out, "Saved ") {
		t.Errorf("the result must stay on stdout: %q", out)
	}

	out, errOut, code = s.EchoBackup(append(s.ProjectArgs(), "restore", "latest", "--yes", "--progress", "json")...)
	if code != 0 {
		t.Fatalf("restore --progress json: exit %d\n%s", code, errOut)
	}
	type event struct {
		ID       string `json:"id"`
		ParentID string `json:"parent_id"`
		Status   string `json:"status"`
		Text     string `json:"text"`
		Current  int64  `json:"current"`
		Total    int64  `json:"total"`
	}
	seen := map[string]bool{}
	var bytesDone, underSafety bool
	for _, line := range strings.Split(strings.TrimSpace(errOut), "\n") {
		var e event
		if err := json.Unmarshal([]byte(line), &e); err != nil {
			t.Fatalf("stderr line is not JSON: %q (%v)\n%s", line, err, errOut)
		}
		seen[e.ID+" "+e.Status] = true
		bytesDone = bytesDone || (e.Current > 0 && e.Total > 0)
		underSafety = underSafety || (e.ParentID == "safety backup" && e.Total > 0)
	}
	for _, want := range []string{`dump of database "library" Working`, `dump of database "library" Done`,
		`database "library" Done`, "volume " + s.Volume("echo_data") + " Done", "safety backup Done", "swap Working", "swap Done", "restore Done"} {
		if !seen[want] {
			t.Errorf("restore --progress json: no event %q in\n%s", want, errOut)
		}
	}
	if !bytesDone || !underSafety {
		t.Errorf("restore --progress json: bytes done/total %v, safety backup parts with sizes %v\n%s", bytesDone, underSafety, errOut)
	}
	if !strings.HasPrefix(out, "Restored ") {
		t.Errorf("the result must stay on stdout: %q", out)
	}
}

// TestCompletion: the real docker CLI asks the plugin for completions (`docker __complete
// echobackup …`, what the shells' completion scripts run) and gets this project's backups
// newest first after latest, its services for --db-service, and contexts other than the current.
func TestCompletion(t *testing.T) {
	s := NewStack(t, "custom")
	s.Up()
	s.save(t)
	s.save(t)
	var names []string
	for _, e := range s.list(t) {
		names = append(names, e.Name)
	}
	complete := func(args ...string) []string {
		out := s.MustDocker(append(append([]string{"__complete", "echobackup"}, s.ProjectArgs()...), args...)...)
		lines := strings.Split(strings.TrimSpace(out), "\n")
		if len(lines) == 0 || !strings.HasPrefix(lines[len(lines)-1], ":") {
			t.Fatalf("__complete %v: no directive line in\n%s", args, out)
		}
		var words []string
		for _, l := range lines[:len(lines)-1] {
			words = append(words, strings.SplitN(l, "\t", 2)[0])
		}
		return words
	}
	for _, cmd := range []string{"restore", "verify", "pin", "unpin"} {
		got := complete(cmd, "")
		if want := append([]string{"latest"}, names...); strings.Join(got, " ") != strings.Join(want, " ") {
			t.Errorf("%s <TAB>: %q, want %q", cmd, got, want)
		}
	}
	if got := complete("restore", names[1][:len(names[1])-3]); len(got) != 1 || got[0] != names[1] {
		t.Errorf("restore <prefix of the older>: %q, want %q", got, names[1])
	}
	if got := complete("--db-service", ""); strings.Join(got, " ") != "cache db echo" {
		t.Errorf("--db-service <TAB>: %q, want the project's services", got)
	}
	current := strings.TrimSpace(s.MustDocker("context", "show"))
	for _, c := range complete("migrate", "--to-context", "") {
		if c == current {
			t.Errorf("migrate --to-context offers the current context %q", c)
		}
		if _, _, code := s.Docker("context", "inspect", c); code != 0 {
			t.Errorf("migrate --to-context offers %q, which is no context", c)
		}
	}
}
