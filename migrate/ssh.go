package migrate

import (
	"errors"
	"fmt"
	"regexp"
	"strings"
)

// The docker CLI's ssh connection helper (cli/connhelper/commandconn) reports a failed or cut
// `ssh … docker system dial-stdio` as one long sentence: the HTTP request it was making, the
// whole ssh command line, a hint about Docker 18.09 and everything ssh wrote on stderr. The
// parts a user acts on are ssh's exit and the last thing the remote side said.
var (
	sshExited = regexp.MustCompile(`(?s)(?:error during connect: [A-Za-z]+ "[^"]*": )?` +
		`command \[ssh ([^\]]*)\] has exited with ([^,]*), make sure the URL is valid, and Docker 18\.09 or later is installed on the remote host: stderr=(.*)$`)
	sshStuck = regexp.MustCompile(`(?s)(?:error during connect: [A-Za-z]+ "[^"]*": )?` +
		`command \[ssh ([^\]]*)\] did not exit after ([^:]*): stderr="(.*)"$`)
)

// sshError is err told in the words of ssh rather than those of the helper; it still wraps err.
type sshError struct {
	msg string
	err error
}

func (e *sshError) Error() string { return e.msg }
func (e *sshError) Unwrap() error { return e.err }

// ExplainSSH rewrites, in err's message, what the ssh connection helper says about a connection
// that failed or was cut: "ssh to root@10.0.0.2 …: <ssh's last line>". Other errors are
// returned as they are.
func ExplainSSH(err error) error {
	if err == nil {
		return nil
	}
	var done *sshError
	if errors.As(err, &done) {
		return err
	}
	if msg := ExplainSSHText(err.Error()); msg != err.Error() {
		return &sshError{msg: msg, err: err}
	}
	return err
}

// ExplainSSHText is ExplainSSH for a message (a progress line that quotes an error).
func ExplainSSHText(msg string) string {
	if m := sshExited.FindStringSubmatchIndex(msg); m != nil {
		args, exit, stderr := msg[m[2]:m[3]], msg[m[4]:m[5]], msg[m[6]:m[7]]
		// ssh writes whole lines: what follows its last newline is what callers wrapped
		// around the helper's message, kept as it is.
		said, rest := "", stderr
		if i := strings.LastIndexByte(stderr, '\n'); i >= 0 {
			said, rest = lastLine(stderr[:i]), stderr[i+1:]
		}
		return msg[:m[0]] + describeSSH(destination(args), exit, said) + rest
	}
	if m := sshStuck.FindStringSubmatchIndex(msg); m != nil {
		args, stderr := msg[m[2]:m[3]], msg[m[6]:m[7]]
		return msg[:m[0]] + fmt.Sprintf("the ssh connection to %s stopped answering%s",
			destination(args), suffix(lastLine(strings.ReplaceAll(stderr, `\n`, "\n"))))
	}
	return msg
}

// describeSSH: exit 127 is the remote shell's "command not found"; 255 is ssh's own failure
// (no route, refused key, unknown host key); a signal is a connection cut on this side.
func describeSSH(dest, exit, said string) string {
	switch {
	case strings.HasSuffix(exit, "status 127"):
		return fmt.Sprintf("%s has no docker CLI in the remote shell's PATH (a docker context over ssh "+
			"runs `docker` there to reach its engine)%s", dest, suffix(said))
	case strings.HasPrefix(exit, "signal:"):
		return fmt.Sprintf("the ssh connection to %s was cut (ssh %s)%s", dest, strings.TrimPrefix(exit, "signal: "), suffix(said))
	case strings.HasSuffix(exit, "status 255"):
		if said == "" {
			said = "ssh exited 255"
		}
		return fmt.Sprintf("ssh to %s failed: %s", dest, said)
	}
	return fmt.Sprintf("ssh to %s ended (%s)%s", dest, exit, suffix(said))
}

// destination is user@host from the helper's ssh arguments ("-l root -o … -- host docker …").
func destination(args string) string {
	f := strings.Fields(args)
	user, host := "", ""
	for i := 0; i < len(f); i++ {
		switch {
		case f[i] == "-l" && i+1 < len(f):
			user = f[i+1]
			i++
		case f[i] == "--" && i+1 < len(f):
			host = f[i+1]
			i = len(f)
		}
	}
	if host == "" {
		return "the remote host"
	}
	if user != "" {
		return user + "@" + host
	}
	return host
}

func lastLine(s string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	return strings.TrimSpace(lines[len(lines)-1])
}

func suffix(said string) string {
	if said == "" {
		return ""
	}
	return ": " + said
}
