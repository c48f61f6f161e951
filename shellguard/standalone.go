package shellguard

import (
	"slices"
	"strings"
)

// ParseStandalone classifies argv (what follows `docker-compose`) for the standalone compose
// binary: compose v2 and later, which turns its line into a `docker compose` one before cobra
// reads it (cmd/compatibility.Convert, mirrored in convertStandalone), and compose v1 1.29,
// whose flags for finding the project and for down (-f, -p, --project-directory, --env-file,
// --profile, down -v/--volumes, -t, --rmi, --remove-orphans) are the same. Args is argv as
// typed, without the guard's --force; GlobalArgs are docker's flags the line moves before
// compose (-H, --context, --tls…), under which the guard runs again.
func ParseStandalone(argv []string) Command {
	converted := convertStandalone(argv)
	cmd := Parse(converted)
	if len(cmd.Args) != len(converted) { // Parse took the guard's --force away
		cmd.Args = withoutForce(argv, -1)
	} else {
		cmd.Args = argv
	}
	return cmd
}

// Flags of the standalone binary that become docker's own (compose v5 cmd/compatibility):
// booleans, and flags with a value. -c and --skip-hostname-check are compose v1's only: v1
// reads -c as --context, and v2 rejects both.
var (
	standaloneBoolFlags   = []string{"--debug", "-D", "--verbose", "--tls", "--tlsverify"}
	standaloneStringFlags = []string{"--tlscacert", "--tlscert", "--tlskey", "--host", "-H", "--context", "--log-level"}
)

// convertStandalone mirrors compose's compatibility.Convert: the flags before the first word
// that is not one (the command, or a flag's value: `-f a.yml` stops there, as in compose)
// that docker owns go first, the rest follows "compose". Beyond it, v1's -c NAME is read as
// --context NAME (a line v2 rejects deletes nothing) and v1's --skip-hostname-check, which
// only relaxes TLS, is dropped.
func convertStandalone(args []string) []string {
	var root []string
	command := []string{"compose"}
	for i := 0; i < len(args); i++ {
		arg := args[i]
		if arg != "" && arg[0] != '-' {
			command = append(command, args[i:]...)
			break
		}
		switch arg {
		case "--verbose":
			arg = "--debug"
		case "-h":
			arg = "--help"
		case "--version", "-v":
			arg = "version"
		case "-c":
			arg = "--context"
		case "--skip-hostname-check":
			continue
		}
		if slices.Contains(standaloneBoolFlags, arg) {
			root = append(root, arg)
			continue
		}
		if flag, value, ok := standaloneString(args, &i, arg); ok {
			root = append(root, flag, value)
			continue
		}
		command = append(command, arg)
	}
	return append(root, command...)
}

// standaloneString reads one of docker's flags with a value, as `--host X` or `--host=X`
// (Convert also takes any word that starts with the flag and holds "=", which this does too).
func standaloneString(args []string, i *int, arg string) (flag, value string, ok bool) {
	for _, f := range standaloneStringFlags {
		if arg == f {
			if *i+1 >= len(args) {
				return "", "", false // compose fails: "flag needs an argument"; docker's parse will too
			}
			*i++
			return f, args[*i], true
		}
		if strings.HasPrefix(arg, f) {
			if _, v, found := strings.Cut(arg, "="); found {
				return f, v, true
			}
		}
	}
	return "", "", false
}
