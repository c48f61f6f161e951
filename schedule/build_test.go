package schedule

import (
	"strings"
	"testing"

	"github.com/echo-backup/echo-backup/retention"
)

func TestBuildJob(t *testing.T) {
	env := map[string]string{"DOCKER_CONFIG": "rel/config", "COMPOSE_PROFILES": "a,b", "ECHOBACKUP_PING_URL": "https://x/secret"}
	s := Spec{Docker: "/usr/bin/docker", Project: "echo", Folder: "/srv/echo", ComposeFiles: []string{"/srv/echo/compose.yaml"},
		Profiles: []string{"p"}, DBService: "db", Dir: "/srv/echo/backups", Policy: retention.Policy{Last: 3, Daily: 7},
		Context: "remote", Getenv: func(k string) string { return env[k] }}
	j, err := BuildJob(s)
	if err != nil {
		t.Fatal(err)
	}
	want := "/usr/bin/docker echobackup --project-directory /srv/echo -p echo -f /srv/echo/compose.yaml --profile p --profile a --profile b " +
		"--db-service db schedule run -o /srv/echo/backups --keep-last 3 --keep-daily 7 --keep-weekly 0 --keep-monthly 0"
	if got := strings.Join(j.Argv, " "); got != want {
		t.Errorf("argv\n%s\nwant\n%s", got, want)
	}
	if !strings.HasPrefix(j.Env["DOCKER_CONFIG"], "/") || !strings.HasSuffix(j.Env["DOCKER_CONFIG"], "/rel/config") ||
		j.Env["DOCKER_CONTEXT"] != "remote" || len(j.Env) != 2 {
		t.Errorf("env %v", j.Env)
	}
	if line, _ := Line(Expr{text: "0 3 * * *"}, j); strings.Contains(line, "secret") || j.Folder != "/srv/echo" || j.Log != "/srv/echo/backups/schedule.log" {
		t.Errorf("job %+v", j)
	}
	s.Protect = true
	if j, _ := BuildJob(s); !strings.Contains(strings.Join(j.Argv, " "), " schedule run --protect -o /srv/echo/backups ") {
		t.Errorf("argv with Protect: %q", j.Argv)
	}
	s.Protect = false
	// DOCKER_HOST says where the engine is: a context would contradict it.
	env["DOCKER_HOST"] = "unix:///run/user/1000/docker.sock"
	if j, _ := BuildJob(s); j.Env["DOCKER_CONTEXT"] != "" || j.Env["DOCKER_HOST"] == "" {
		t.Errorf("env with DOCKER_HOST %v", j.Env)
	}
}
