package shellguard

import (
	"context"
	"os"
	"os/exec"
	"regexp"
	"strings"
)

// A prune deletes named volumes too when the request is made at an API before 1.42: the engine
// reads the version the client speaks, not its own. The docker CLI speaks DOCKER_API_VERSION
// when set, else the lower of its own newest version and the engine's; so an old CLI against a
// new engine prunes named volumes, and the engine's version alone cannot tell.

var apiVersion = regexp.MustCompile(`^[0-9]+\.[0-9]+$`)

// ClientAPIVersion is the newest API version the docker program (a path or a name in PATH)
// speaks, or DOCKER_API_VERSION when set; "" when neither tells, which the guard reads as old.
func ClientAPIVersion(ctx context.Context, docker string) string {
	if v := strings.TrimSpace(os.Getenv("DOCKER_API_VERSION")); v != "" {
		return v
	}
	// DefaultAPIVersion is the CLI's own newest; CLIs before it have only APIVersion.
	for _, field := range []string{"DefaultAPIVersion", "APIVersion"} {
		// docker version exits non-zero when the engine does not answer but still prints the
		// client's part, so the output counts whatever the exit code.
		out, _ := exec.CommandContext(ctx, docker, "version", "--format", "{{.Client."+field+"}}").Output()
		if v := strings.TrimSpace(string(out)); apiVersion.MatchString(v) {
			return v
		}
	}
	return ""
}

// spoken is the version a prune request arrives at: the client's when it is lower than the
// engine's; an unknown client counts as one that prunes named volumes.
func spoken(server, client string) string {
	if client == "" {
		return "1.0"
	}
	if versionLess(client, server) {
		return client
	}
	return server
}
