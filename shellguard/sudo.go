package shellguard

import (
	"errors"
	"fmt"
	"io"
	"regexp"

	"github.com/spf13/pflag"
)

// Programs the shell functions wrap; docker and docker-compose are also the ones the guard
// reads under sudo.
const (
	ProgramDocker  = "docker"
	ProgramCompose = "docker-compose"
	ProgramSudo    = "sudo"
)

// Sudo is a sudo command line (what follows `sudo`) that runs docker or docker-compose.
type Sudo struct {
	// Prefix is sudo's options and environment assignments as typed, through "--": the guard
	// runs under exactly these, so it reaches the engine the command will, as the same user.
	Prefix []string
	// Program is docker or docker-compose; "" when sudo runs something else (or nothing).
	Program string
	// Args is what follows the program.
	Args []string
	// Unknown is set when the line holds an option whose effect on the command the guard does
	// not know (-i, -s, -b, -S…): the line then runs as typed, unguarded, and the guard says so.
	Unknown string
}

// envAssignment is a VAR=value word, which sudo reads as an environment variable for the
// command when it comes before it.
var envAssignment = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*=`)

// sudoFlags are the options of sudo 1.9 (sudo(8)) that change only who runs the command and
// with which environment, the same for the guard run under them. The others change how the
// command runs (a login shell, -s's shell, the background, a password on stdin that cannot be
// read twice) or run no command (-l, -v, -e, -K, -V, -h): those the guard does not read.
func sudoFlags() *pflag.FlagSet {
	fs := pflag.NewFlagSet("sudo", pflag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.Usage = func() {}
	fs.SetInterspersed(false)
	fs.StringP("preserve-env", "E", "", "")
	fs.Lookup("preserve-env").NoOptDefVal = "*" // -E, --preserve-env, --preserve-env=LIST
	fs.BoolP("set-home", "H", false, "")
	fs.BoolP("non-interactive", "n", false, "")
	fs.BoolP("preserve-groups", "P", false, "")
	fs.BoolP("reset-timestamp", "k", false, "")
	fs.BoolP("askpass", "A", false, "")
	fs.StringP("user", "u", "", "")
	fs.StringP("group", "g", "", "")
	fs.StringP("chdir", "D", "", "")
	fs.StringP("close-from", "C", "", "")
	fs.StringP("prompt", "p", "", "")
	fs.StringP("role", "r", "", "")
	fs.StringP("type", "t", "", "")
	fs.StringP("command-timeout", "T", "", "")
	fs.StringP("chroot", "R", "", "")
	return fs
}

// ParseSudo reads sudo's options and finds the program it runs.
func ParseSudo(argv []string) Sudo {
	fs := sudoFlags()
	if err := fs.Parse(argv); err != nil {
		return Sudo{Unknown: unknownOption(err)}
	}
	rest := fs.Args()
	prefix := argv[:len(argv)-len(rest)]
	n := 0
	for n < len(rest) && envAssignment.MatchString(rest[n]) {
		n++
	}
	prefix = argv[:len(argv)-len(rest)+n]
	rest = rest[n:]
	if len(rest) == 0 || (rest[0] != ProgramDocker && rest[0] != ProgramCompose) {
		return Sudo{Prefix: prefix}
	}
	return Sudo{Prefix: prefix, Program: rest[0], Args: rest[1:]}
}

func unknownOption(err error) string {
	if errors.Is(err, pflag.ErrHelp) {
		return "-h"
	}
	var name string
	if _, scanErr := fmt.Sscanf(err.Error(), "unknown shorthand flag: '%1s'", &name); scanErr == nil {
		return "-" + name
	}
	if _, scanErr := fmt.Sscanf(err.Error(), "unknown flag: %s", &name); scanErr == nil {
		return name
	}
	return err.Error()
}
