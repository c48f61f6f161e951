package migrate

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/echo-backup/echo-backup/compose"
)

// The helper's messages as the docker CLI v29 wrote them against the e2e suite's ssh server.
func TestExplainSSH(t *testing.T) {
	helper := func(exit, stderr string) string {
		return `error during connect: Get "http://docker.example.com/_ping": command [ssh -l root -o ConnectTimeout=30 -T -- 10.213.0.5 docker system dial-stdio] ` +
			`has exited with ` + exit + `, make sure the URL is valid, and Docker 18.09 or later is installed on the remote host: stderr=` + stderr
	}
	for _, c := range []struct{ in, want string }{
		{helper("exit status 255", "ssh: connect to host 10.213.0.5 port 22: No route to host\n"),
			"ssh to root@10.213.0.5 failed: ssh: connect to host 10.213.0.5 port 22: No route to host"},
		{helper("exit status 255", "root@10.213.0.5: Permission denied (publickey).\n"),
			"ssh to root@10.213.0.5 failed: root@10.213.0.5: Permission denied (publickey)."},
		{helper("exit status 127", "/usr/bin/env: 'bash': No such file or directory\nbash: line 1: docker: command not found\n"),
			"root@10.213.0.5 has no docker CLI in the remote shell's PATH (a docker context over ssh runs `docker` there to reach its engine): bash: line 1: docker: command not found"},
		{helper("signal: killed", ""), "the ssh connection to root@10.213.0.5 was cut (ssh killed)"},
		// What a restore wraps around it stays after it.
		{helper("signal: killed", " (nothing was changed)"), "the ssh connection to root@10.213.0.5 was cut (ssh killed) (nothing was changed)"},
		{helper("exit status 255", "Connection closed by 10.213.0.5 port 22\n (nothing was changed)"),
			"ssh to root@10.213.0.5 failed: Connection closed by 10.213.0.5 port 22 (nothing was changed)"},
		{"something else", "something else"},
	} {
		err := &compose.UserError{Err: fmt.Errorf("cannot reach context %q: %w", "x", errors.New(c.in))}
		got := ExplainSSH(err)
		want := c.want
		if c.in != "something else" {
			want = `cannot reach context "x": ` + c.want
		} else {
			want = `cannot reach context "x": something else`
		}
		if got.Error() != want {
			t.Errorf("ExplainSSH(%q):\n got %q\nwant %q", c.in, got, want)
		}
		if !compose.IsUserError(got) || strings.Contains(got.Error(), "\n") {
			t.Errorf("ExplainSSH(%q) = %q: not one line, or no longer a user error", c.in, got)
		}
	}
}
