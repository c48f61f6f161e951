//go:build e2e

package e2e

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// TestScheduleProtects: `schedule install` protects the project and says so; a volume added
// to the compose file and brought up afterwards is held after the next scheduled run, run as
// cron runs it, with nothing else done; a cron-style `docker system prune -af --volumes` then
// keeps every data volume. status warns once the project is no longer protected, and
// --no-protect leaves protection out of the line. All of it on a second engine of the test's
// own: an unscoped system prune must never run on the shared one.
func TestScheduleProtects(t *testing.T) {
	saveCrontab(t)
	eng := StartEngine2(t) // its cleanup, registered first, runs last: after the stack's
	eng.LoadImage(t, pgImage)
	s := NewStack(t, "custom")
	s.Env = append(s.Env, "DOCKER_CONTEXT="+eng.Context)
	s.cronEnv(t)
	s.Up()
	pg, data, uploads := s.Volume("pgdata"), s.Volume("echo_data"), s.Volume("echo_uploads")

	install := append(s.ProjectArgs(), "schedule", "install", "--at", "03:00")
	out, errOut, code := s.EchoBackup(install...)
	if code != 0 || !strings.Contains(out, "Protected: container echobackup-sentinel-"+s.Name+" holds "+data+", "+pg) {
		t.Fatalf("schedule install: exit %d, want it protected in one line\n%s%s", code, out, errOut)
	}
	line := s.ourLine(t)
	_, command := cronCommand(t, line)
	if !strings.Contains(command, " schedule run --protect ") {
		t.Fatalf("the scheduled line does not protect: %s", command)
	}
	if out, _, _ := s.EchoBackup(append(s.ProjectArgs(), "status")...); strings.Contains(out, "WARNING") || !strings.Contains(out, "Protected: yes") {
		t.Errorf("status after install:\n%s", out)
	}

	// The user adds a volume and brings it up; nothing else.
	override := filepath.Join(s.Dir, "compose.override.yaml")
	text, err := os.ReadFile(override)
	if err != nil {
		t.Fatal(err)
	}
	text = append(text, []byte("    volumes:\n      - echo_uploads:/app/uploads\nvolumes:\n  echo_uploads:\n")...)
	if err := os.WriteFile(override, text, 0o644); err != nil {
		t.Fatal(err)
	}
	s.Up()
	s.MustCompose("exec", "-T", "-u", "0", s.AppService, "sh", "-c", "echo kept > /app/uploads/new.txt")
	if st := s.guardStatus(t); slices.Contains(st.Protection.Volumes, uploads) {
		t.Fatalf("the new volume %s is held before any run: %v", uploads, st.Protection.Volumes)
	}

	stdout, stderr, code, _ := runAsCron(t, command)
	logText, _ := os.ReadFile(filepath.Join(s.Dir, "backups", "schedule.log"))
	if code != 0 || !strings.Contains(string(logText), "(new: "+uploads+")") {
		t.Fatalf("scheduled run: exit %d, want the new volume protected\nstdout: %s\nstderr: %s\nlog:\n%s", code, stdout, stderr, logText)
	}
	want := []string{data, uploads, pg}
	slices.Sort(want)
	if st := s.guardStatus(t); !st.Protection.Protected || !slices.Equal(st.Protection.Volumes, want) {
		t.Fatalf("after the scheduled run the sentinel holds %v (protected %v), want %v", st.Protection.Volumes, st.Protection.Protected, want)
	}
	before := s.guardedState(t, want)

	// A disk-space cleanup from cron, unscoped, with the project's containers gone.
	s.Down()
	prune := "DOCKER_CONFIG='" + dockerConfig + "' DOCKER_CONTEXT='" + eng.Context + "' docker system prune -af --volumes"
	pout, perr, pcode, _ := runAsCron(t, prune)
	if pcode != 0 {
		t.Fatalf("cron-style system prune: exit %d\n%s%s", pcode, pout, perr)
	}
	t.Logf("docker system prune -af --volumes said:\n%s", tail(pout, 2000))
	s.assertVolumes(t, "after a cron-style docker system prune -af --volumes", true, want...)
	if !s.serverAPIAtLeast(t, 1, 42) { // the control: below API 1.42 the prune takes unused named volumes
		s.assertVolumes(t, "after a cron-style docker system prune -af --volumes (the unprotected cache)", false, s.Volume("cache_data"))
	}
	s.Up()
	after := s.guardedState(t, want)
	assertSameState(t, "after a cron-style docker system prune -af --volumes", before.state, after.state)
	if got := s.MustCompose("exec", "-T", s.AppService, "cat", "/app/uploads/new.txt"); got != "kept\n" {
		t.Errorf("the new volume's file after the prune: %q", got)
	}

	// No longer protected: status says so in one line.
	if _, errOut, code := s.EchoBackup(append(s.ProjectArgs(), "unprotect", "--no-backup")...); code != 0 {
		t.Fatalf("unprotect --no-backup: exit %d\n%s", code, errOut)
	}
	out, _, _ = s.EchoBackup(append(s.ProjectArgs(), "status")...)
	if n := strings.Count(out, "has a schedule but is not protected"); n != 1 {
		t.Errorf("status of a scheduled, unprotected project: %d warnings, want 1\n%s", n, out)
	}

	// --no-protect: said, and left out of the line.
	out, errOut, code = s.EchoBackup(append(install, "--no-protect")...)
	if code != 0 || !strings.Contains(out, "Not protected (--no-protect)") {
		t.Fatalf("schedule install --no-protect: exit %d\n%s%s", code, out, errOut)
	}
	if _, command := cronCommand(t, s.ourLine(t)); strings.Contains(command, "--protect") {
		t.Errorf("--no-protect left protection in the line: %s", command)
	}
	if len(s.sentinels(t)) != 0 {
		t.Errorf("install --no-protect started a sentinel")
	}
}

// ourLine is the crontab's one line for this stack.
func (s *Stack) ourLine(t *testing.T) string {
	t.Helper()
	text, _ := readCrontab(t)
	var mine []string
	for _, l := range ourLines(text) {
		if strings.Contains(l, s.Name) {
			mine = append(mine, l)
		}
	}
	if len(mine) != 1 {
		t.Fatalf("crontab lines of %s: %q", s.Name, mine)
	}
	return mine[0]
}
