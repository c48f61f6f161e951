package compose

import (
	"path"
	"regexp"
	"strings"

	"github.com/compose-spec/compose-go/v2/types"
)

// imageDefault stands in programs for the image's own default program, which the compose
// file does not name (the engine's image config is not read here: planning needs no engine).
const imageDefault = ""

// programs are the programs a service's container starts, as the compose file tells. It looks
// through entrypoint wrappers (docker-entrypoint.sh, tini, gosu, env…) and into `sh -c`
// scripts, so `sh -c 'while true; do pg_dump -h postgres …; sleep 3600; done'` starts pg_dump
// and sleep, not postgres. A service that overrides neither entrypoint nor command, or passes
// only options (`command: ["-c", "shared_buffers=256MB"]`), runs imageDefault.
func programs(svc types.ServiceConfig) []string {
	var args []string
	switch {
	case len(svc.Entrypoint) > 0:
		// An overridden entrypoint drops the image's command: only the service's own follows.
		args = append(append(args, svc.Entrypoint...), svc.Command...)
	case len(svc.Command) > 0:
		// The image's entrypoint (nil) or none (`entrypoint: []`) runs the command. Images in
		// the official style treat leading options as options of their default program.
		args = svc.Command
		if strings.HasPrefix(args[0], "-") {
			return []string{imageDefault}
		}
	default:
		return []string{imageDefault} // also after `entrypoint: []`: the engine falls back to the image's command
	}
	return started(args)
}

// isPostgresServer: the program is PostgreSQL's server itself.
func isPostgresServer(prog string) bool { return prog == "postgres" || prog == "postmaster" }

// started follows argv through wrappers to the program it runs.
func started(args []string) []string {
	for len(args) > 0 {
		prog := path.Base(args[0])
		switch {
		case isShell(prog):
			return scriptPrograms(args[1:])
		case strings.Contains(prog, "entrypoint"):
			// docker-entrypoint.sh and its kind: options go to the image's default program,
			// anything else runs as it is.
			args = args[1:]
			if len(args) > 0 && strings.HasPrefix(args[0], "-") {
				return []string{imageDefault}
			}
		case prog == "gosu" || prog == "su-exec":
			args = args[min(2, len(args)):] // the user, then the program
		case prog == "env" || prog == "exec" || prog == "nohup" || prog == "tini" || prog == "dumb-init" || prog == "busybox":
			args = skipOptions(args[1:])
		default:
			return []string{prog}
		}
	}
	return nil
}

func isShell(prog string) bool {
	switch prog {
	case "sh", "bash", "ash", "dash", "zsh":
		return true
	}
	return false
}

// skipOptions drops a wrapper's own options and env's VAR=value words.
func skipOptions(args []string) []string {
	for len(args) > 0 && (strings.HasPrefix(args[0], "-") || assignment.MatchString(args[0])) {
		args = args[1:]
	}
	return args
}

var assignment = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*=`)

// scriptPrograms reads `sh [options] -c SCRIPT [$0 args…]`. A shell running a script file
// runs what that file says, which the compose file does not show: the shell itself is
// reported then.
func scriptPrograms(args []string) []string {
	dashC := false
	for i, a := range args {
		if a == "--" {
			continue
		}
		if strings.HasPrefix(a, "-") {
			dashC = dashC || !strings.HasPrefix(a, "--") && strings.Contains(a, "c")
			continue
		}
		if !dashC {
			return []string{"sh"}
		}
		var positional []string // "$@": the arguments after $0
		if len(args) > i+2 {
			positional = args[i+2:]
		}
		var progs []string
		for _, cmd := range simpleCommands(a) {
			progs = append(progs, started(expandArgs(cmd, positional))...)
		}
		return progs
	}
	return []string{"sh"}
}

func expandArgs(words, positional []string) []string {
	var out []string
	for _, w := range words {
		if w == "$@" || w == "$*" {
			out = append(out, positional...)
			continue
		}
		out = append(out, w)
	}
	return out
}

// simpleCommands splits a shell script into the words of its simple commands, roughly: enough
// to see which programs it starts, not to run it. Quotes group words; ; & | newlines and
// parentheses end a command; command substitutions are read as scripts of their own; the
// reserved words that start a command (while, do, then…) and VAR=value prefixes are dropped,
// as are for and case headers.
func simpleCommands(script string) [][]string {
	var cmds [][]string
	var words []string
	var word strings.Builder
	inWord := false
	endWord := func() {
		if inWord {
			words = append(words, word.String())
			word.Reset()
			inWord = false
		}
	}
	endCommand := func() {
		endWord()
		if w := commandWords(words); len(w) > 0 {
			cmds = append(cmds, w)
		}
		words = nil
	}
	for i := 0; i < len(script); i++ {
		c := script[i]
		switch {
		case c == '\'' || c == '"':
			end := strings.IndexByte(script[i+1:], c)
			if end < 0 {
				end = len(script) - i - 1
			}
			word.WriteString(script[i+1 : i+1+end])
			inWord = true
			i += end + 1
		case c == '\\' && i+1 < len(script):
			i++
			word.WriteByte(script[i])
			inWord = true
		case c == '$' && i+1 < len(script) && script[i+1] == '(' || c == '`':
			// A command substitution runs its own commands and leaves a word in this one.
			inner, end := substitution(script, i)
			cmds = append(cmds, simpleCommands(inner)...)
			word.WriteString("$()")
			inWord = true
			i = end
		case strings.IndexByte(";&|()\n", c) >= 0:
			endCommand()
		case c == ' ' || c == '\t' || c == '\r':
			endWord()
		default:
			word.WriteByte(c)
			inWord = true
		}
	}
	endCommand()
	return cmds
}

// substitution finds the script of the $(…) or `…` that starts at i, and where it ends.
func substitution(script string, i int) (string, int) {
	if script[i] == '`' {
		end := strings.IndexByte(script[i+1:], '`')
		if end < 0 {
			return script[i+1:], len(script)
		}
		return script[i+1 : i+1+end], i + 1 + end
	}
	depth := 0
	for j := i + 1; j < len(script); j++ {
		switch script[j] {
		case '(':
			depth++
		case ')':
			if depth--; depth == 0 {
				return script[i+2 : j], j
			}
		}
	}
	return script[i+2:], len(script)
}

// commandWords drops what precedes a simple command's program.
func commandWords(words []string) []string {
	for len(words) > 0 {
		switch w := words[0]; {
		case w == "for" || w == "case" || w == "select":
			return nil
		case reservedWords[w] || assignment.MatchString(w):
			words = words[1:]
		default:
			return words
		}
	}
	return nil
}

var reservedWords = map[string]bool{
	"if": true, "then": true, "else": true, "elif": true, "fi": true, "do": true, "done": true,
	"while": true, "until": true, "esac": true, "!": true, "{": true, "}": true, "time": true,
}
