package shellguard

import (
	"context"
	"os/exec"
	"testing"
)

func TestSpoken(t *testing.T) {
	for _, c := range []struct{ server, client, want string }{
		{"1.41", "1.50", "1.41"},
		{"1.52", "1.41", "1.41"}, // an old CLI on a new engine: named volumes go
		{"1.52", "1.52", "1.52"},
		{"1.52", "", "1.0"},
	} {
		if got := spoken(c.server, c.client); got != c.want {
			t.Errorf("spoken(%q, %q) = %q, want %q", c.server, c.client, got, c.want)
		}
	}
}

func TestClientAPIVersion(t *testing.T) {
	ctx := context.Background()
	if got := ClientAPIVersion(ctx, "/nonexistent/docker"); got != "" {
		t.Errorf("a missing CLI: got %q, want \"\"", got)
	}
	docker, err := exec.LookPath("docker")
	if err != nil {
		t.Skip("no docker CLI in PATH")
	}
	t.Setenv("DOCKER_HOST", "unix:///nonexistent.sock") // the client's part needs no engine
	if got := ClientAPIVersion(ctx, docker); !apiVersion.MatchString(got) {
		t.Errorf("the docker CLI's version: got %q", got)
	}
	t.Setenv("DOCKER_API_VERSION", "1.40")
	if got := ClientAPIVersion(ctx, docker); got != "1.40" {
		t.Errorf("with DOCKER_API_VERSION=1.40: got %q", got)
	}
}
