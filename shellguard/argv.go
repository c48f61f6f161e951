// Package shellguard reads a docker command line typed by hand and tells whether it would
// delete an Echo project's volumes, and writes the shell function that asks it before running
// docker. Parsing needs no engine, so commands that delete nothing pass without delay.
package shellguard

import (
	"strings"
)

// Kind is what a docker command line would destroy.
type Kind int

const (
	Pass        Kind = iota // deletes no named volume
	ComposeDown             // docker compose down -v: the project's volumes
	VolumeRm                // docker volume rm NAME…
	VolumePrune             // docker volume prune: unused volumes
	SystemPrune             // docker system prune --volumes: volumes no running container uses
)

func (k Kind) String() string {
	return [...]string{"pass", "compose down --volumes", "volume rm", "volume prune", "system prune --volumes"}[k]
}

// Project are compose's project flags, as `docker compose` reads them.
type Project struct {
	Name     string
	Files    []string
	Dir      string
	EnvFiles []string
	Profiles []string
}

// Command is a parsed docker command line.
type Command struct {
	Kind Kind
	// GlobalArgs are docker's own flags as typed (-H, --context, --config, --tls…): the guard
	// runs again under them to reach the same engine.
	GlobalArgs []string
	Project    Project  // compose down
	Volumes    []string // volume rm
	All        bool     // prune -a: named volumes too on API 1.42 and later
	Filters    []string // prune --filter values: a label filter narrows what goes
	// Force is the guard's own --force on compose down (compose has none): go on when the
	// backup fails. It is taken out of Args.
	Force bool
	// Args is what docker must run: the line as typed, without the guard's --force.
	Args []string
}

// docker's global flags that take a value; the others are booleans.
var globalValue = map[string]bool{
	"--config": true, "-c": true, "--context": true, "-H": true, "--host": true,
	"-l": true, "--log-level": true, "--tlscacert": true, "--tlscert": true, "--tlskey": true,
}

// compose's root flags that take a value.
var composeValue = map[string]bool{
	"-f": true, "--file": true, "-p": true, "--project-name": true, "--project-directory": true,
	"--env-file": true, "--profile": true, "--ansi": true, "--parallel": true, "--progress": true,
	"--workdir": true,
}

// Parse classifies argv (what follows `docker`). It never fails: what it does not recognise
// deletes nothing it knows of, and passes.
func Parse(argv []string) Command {
	cmd := Command{Args: argv}
	i := parseGlobal(argv)
	cmd.GlobalArgs = argv[:min(i, len(argv))]
	if i >= len(argv) {
		return cmd
	}
	rest := argv[i+1:]
	switch argv[i] {
	case "compose":
		if parseCompose(rest, &cmd) && cmd.Force {
			cmd.Args = withoutForce(argv, i)
		}
		if cmd.Kind != ComposeDown {
			cmd.Force = false
		}
	case "volume":
		parseVolume(rest, &cmd)
	case "system":
		parseSystem(rest, &cmd)
	}
	return cmd
}

// parseGlobal skips docker's flags and returns the index of the subcommand.
func parseGlobal(argv []string) int {
	for i := 0; i < len(argv); i++ {
		a := argv[i]
		if !strings.HasPrefix(a, "-") || a == "-" {
			return i
		}
		if a == "--" {
			return i + 1
		}
		if name, _, inline := splitFlag(a, globalValue); globalValue[name] && !inline {
			i++
		}
	}
	return len(argv)
}

// splitFlag splits "--name=value" and "-Xvalue" (X a short flag that takes a value).
func splitFlag(a string, valued map[string]bool) (name, value string, inline bool) {
	if strings.HasPrefix(a, "--") {
		if n, v, ok := strings.Cut(a, "="); ok {
			return n, v, true
		}
		return a, "", false
	}
	if len(a) > 2 && valued[a[:2]] {
		return a[:2], strings.TrimPrefix(a[2:], "="), true
	}
	return a, "", false
}

// parseCompose reads `compose [flags] down [flags] [services]`: project flags may come
// anywhere before down, and the guard's --force anywhere after compose. It tells whether the
// command is down, with or without volumes.
func parseCompose(argv []string, cmd *Command) (down bool) {
	volumes := false
	for i := 0; i < len(argv); i++ {
		a := argv[i]
		if a == "--" {
			break
		}
		if a == "--force" {
			cmd.Force = true
			continue
		}
		if !strings.HasPrefix(a, "-") {
			if !down && a != "down" {
				return false // another compose command
			}
			down = true
			continue
		}
		if down {
			volumes = downFlag(a, volumes)
			if a == "--rmi" || a == "-t" || a == "--timeout" {
				i++
			}
			continue
		}
		name, value, inline := splitFlag(a, composeValue)
		if composeValue[name] && !inline {
			if i+1 >= len(argv) {
				return false
			}
			i++
			value = argv[i]
		}
		cmd.Project.set(name, value)
		if name == "--dry-run" {
			return false // compose removes nothing
		}
	}
	if down && volumes {
		cmd.Kind = ComposeDown
	}
	return down
}

func downFlag(a string, volumes bool) bool {
	switch {
	case a == "-v" || a == "--volumes" || a == "--volumes=true" || a == "-v=true":
		return true
	case a == "--volumes=false" || a == "-v=false":
		return false
	}
	return volumes
}

func (p *Project) set(name, value string) {
	switch name {
	case "-f", "--file":
		p.Files = append(p.Files, value)
	case "-p", "--project-name":
		p.Name = value
	case "--project-directory", "--workdir":
		p.Dir = value
	case "--env-file":
		p.EnvFiles = append(p.EnvFiles, value)
	case "--profile":
		p.Profiles = append(p.Profiles, value)
	}
}

// withoutForce is argv without the guard's --force after compose (at index from).
func withoutForce(argv []string, from int) []string {
	out := append([]string(nil), argv[:from+1]...)
	for i, a := range argv[from+1:] {
		if a == "--" {
			return append(out, argv[from+1+i:]...)
		}
		if a != "--force" {
			out = append(out, a)
		}
	}
	return out
}

func parseVolume(argv []string, cmd *Command) {
	if len(argv) == 0 {
		return
	}
	switch argv[0] {
	case "rm", "remove":
		cmd.Kind = VolumeRm
		cmd.Volumes = operands(argv[1:], nil)
		if len(cmd.Volumes) == 0 {
			cmd.Kind = Pass // docker refuses it
		}
	case "prune":
		cmd.Kind = VolumePrune
		cmd.All = hasBool(argv[1:], "--all", 'a')
		cmd.Filters = filters(argv[1:])
	}
}

func parseSystem(argv []string, cmd *Command) {
	if len(argv) == 0 || argv[0] != "prune" {
		return
	}
	if hasBool(argv[1:], "--volumes", 0) {
		cmd.Kind = SystemPrune
		cmd.All = hasBool(argv[1:], "--all", 'a')
		cmd.Filters = filters(argv[1:])
	}
}

// operands are the arguments that are not flags; valued names the flags that take a value.
func operands(argv []string, valued map[string]bool) []string {
	var out []string
	for i := 0; i < len(argv); i++ {
		a := argv[i]
		switch {
		case a == "--":
			return append(out, argv[i+1:]...)
		case strings.HasPrefix(a, "-") && a != "-":
			if valued[a] {
				i++
			}
		default:
			out = append(out, a)
		}
	}
	return out
}

// hasBool finds a boolean flag by its long name or its letter in a group of short ones
// (-af), skipping the values of --filter.
func hasBool(argv []string, long string, short byte) bool {
	for i := 0; i < len(argv); i++ {
		a := argv[i]
		switch {
		case a == "--":
			return false
		case a == "--filter":
			i++
		case a == long || a == long+"=true":
			return true
		case short != 0 && len(a) > 1 && a[0] == '-' && a[1] != '-' && strings.IndexByte(a[1:], short) >= 0:
			return true
		}
	}
	return false
}

func filters(argv []string) []string {
	var out []string
	for i := 0; i < len(argv); i++ {
		switch a := argv[i]; {
		case a == "--":
			return out
		case a == "--filter" && i+1 < len(argv):
			i++
			out = append(out, argv[i])
		case strings.HasPrefix(a, "--filter="):
			out = append(out, strings.TrimPrefix(a, "--filter="))
		}
	}
	return out
}

// LabelsMatch applies the label filters of a prune (label=K, label=K=V, label!=K,
// label!=K=V) to a volume's labels; other filters (until) are ignored, which keeps more
// volumes at risk, never fewer.
func LabelsMatch(filters []string, labels map[string]string) bool {
	for _, f := range filters {
		key, expr, _ := strings.Cut(f, "=")
		neg := strings.HasSuffix(key, "!")
		if strings.TrimSuffix(key, "!") != "label" {
			continue
		}
		k, v, withValue := strings.Cut(expr, "=")
		got, has := labels[k]
		match := has && (!withValue || got == v)
		if match == neg {
			return false
		}
	}
	return true
}
