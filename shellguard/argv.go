// Package shellguard reads a docker command line typed by hand and tells whether it would
// delete an Echo project's volumes, and writes the shell function that asks it before running
// docker. Parsing needs no engine, so commands that delete nothing pass without delay.
// Endangered is the plan a guarded line gets: which projects' saved volumes it would delete
// (the plugin then takes a checkpoint of each); Rerun and UnderSudo run the guard again where
// the command itself will run.
package shellguard

import (
	"fmt"
	"io"
	"strings"

	cliflags "github.com/docker/cli/cli/flags"
	"github.com/docker/cli/opts"
	"github.com/moby/moby/client"
	"github.com/spf13/pflag"
)

// Kind is what a docker command line would destroy.
type Kind int

const (
	Pass        Kind = iota // deletes no named volume
	ComposeDown             // docker compose down -v: the project's volumes
	VolumeRm                // docker volume rm NAME…
	VolumePrune             // docker volume prune: unused volumes
	SystemPrune             // docker system prune --volumes: volumes no running container uses
	// Unreadable is a line whose flags the guard cannot read the way docker would: it cannot
	// tell what the line deletes, so it does not let it through unseen.
	Unreadable
)

func (k Kind) String() string {
	return [...]string{"pass", "compose down --volumes", "volume rm", "volume prune", "system prune --volumes", "unreadable command line"}[k]
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
	// All: prune -a, or a prune filter "all", which the engine reads the same way: named
	// volumes go too on API 1.42 and later.
	All     bool
	Filters client.Filters // prune --filter, parsed as the docker CLI parses it
	// ClientAPI is the API version the docker CLI running a prune speaks at most
	// (ClientAPIVersion); "" counts as one old enough to prune named volumes.
	ClientAPI string
	// Force is the guard's own --force on compose down (compose has none): go on when the
	// backup fails. It is taken out of Args.
	Force bool
	// Err says why a line is Unreadable.
	Err error
	// Args is what docker must run: the line as typed, without the guard's --force.
	Args []string
}

// The flag sets below mirror the commands of docker/cli v29 and compose v5 (their cobra
// commands need a connected CLI to build): parsing with the same pflag definitions means
// every spelling docker accepts (--volumes=1, -vt 5, --volume, grouped short flags) reads
// the same here. Each set has the help flag cobra adds. Only the last command's --help keeps
// it from running: one given to docker or compose before the command is read and ignored
// (compose's -v prints its version only without a command; docker runs a plugin all the same).

func newFlags(name string, interspersed bool) *pflag.FlagSet {
	fs := pflag.NewFlagSet(name, pflag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.Usage = func() {}
	fs.SetInterspersed(interspersed)
	fs.BoolP("help", "h", false, "")
	return fs
}

// asksHelp: with --help the command prints its help and runs nothing.
func asksHelp(fs *pflag.FlagSet) bool {
	help, _ := fs.GetBool("help")
	return help
}

// dockerFlags are the docker CLI's global flags (cmd/docker: cli/flags plus --version). Like
// the CLI, they are read up to the first word that is not a flag: the command.
func dockerFlags() *pflag.FlagSet {
	fs := newFlags("docker", false)
	cliflags.NewClientOptions().InstallFlags(fs)
	fs.BoolP("version", "v", false, "")
	return fs
}

// composeFlags are `docker compose`'s root flags (cmd/compose/compose.go), and the guard's
// own --force.
func composeFlags(p *Project, dryRun, force *bool) *pflag.FlagSet {
	fs := newFlags("compose", false)
	fs.StringArrayVar(&p.Profiles, "profile", nil, "")
	fs.StringVarP(&p.Name, "project-name", "p", "", "")
	fs.StringArrayVarP(&p.Files, "file", "f", nil, "")
	fs.StringArray("insecure-registry", nil, "")
	fs.StringArrayVar(&p.EnvFiles, "env-file", nil, "")
	fs.StringVar(&p.Dir, "project-directory", "", "")
	fs.String("workdir", "", "") // the deprecated spelling of --project-directory
	fs.Bool("compatibility", false, "")
	fs.String("progress", "", "")
	fs.Bool("all-resources", false, "")
	fs.String("ansi", "auto", "")
	fs.Int("parallel", -1, "")
	fs.BoolP("version", "v", false, "")
	fs.BoolVar(dryRun, "dry-run", false, "")
	fs.Bool("no-ansi", false, "")
	fs.Bool("verbose", false, "")
	fs.BoolVar(force, "force", false, "")
	return fs
}

// downFlags are `compose down`'s (cmd/compose/down.go) with the inherited --dry-run, and the
// guard's --force.
func downFlags(volumes, dryRun, force *bool) *pflag.FlagSet {
	fs := newFlags("down", true)
	fs.Bool("remove-orphans", false, "")
	fs.IntP("timeout", "t", 0, "")
	fs.BoolVarP(volumes, "volumes", "v", false, "")
	fs.String("rmi", "", "")
	fs.SetNormalizeFunc(func(_ *pflag.FlagSet, name string) pflag.NormalizedName {
		if name == "volume" { // compose still takes the old spelling
			name = "volumes"
		}
		return pflag.NormalizedName(name)
	})
	fs.BoolVar(dryRun, "dry-run", false, "")
	fs.BoolVar(force, "force", false, "")
	return fs
}

// Parse classifies argv (what follows `docker`). It never fails: a line it cannot read is
// Unreadable, and one that deletes nothing it knows of passes.
func Parse(argv []string) Command {
	cmd := Command{Args: argv}
	global := dockerFlags()
	if err := global.Parse(argv); err != nil {
		return cmd.unreadable("docker", err)
	}
	rest := global.Args()
	cmd.GlobalArgs = argv[:len(argv)-len(rest)]
	if len(rest) == 0 {
		return cmd
	}
	switch rest[0] {
	case "compose":
		return parseCompose(cmd, len(argv)-len(rest), rest[1:])
	case "volume":
		return parseVolume(cmd, rest[1:])
	case "system":
		return parseSystem(cmd, rest[1:])
	}
	return cmd
}

func (c Command) unreadable(what string, err error) Command {
	c.Kind, c.Err = Unreadable, fmt.Errorf("reading the flags of `%s`: %w", what, err)
	return c
}

// parseCompose reads `compose [flags] down [flags] [services]`; at is the index of compose in
// cmd.Args. Like compose, project flags come before down, and --dry-run anywhere.
func parseCompose(cmd Command, at int, argv []string) Command {
	var rootDry, rootForce, downDry, downForce, volumes bool
	root := composeFlags(&cmd.Project, &rootDry, &rootForce)
	if err := root.Parse(argv); err != nil {
		return cmd.unreadable("docker compose", err)
	}
	rest := root.Args()
	if len(rest) == 0 || rest[0] != "down" {
		return cmd
	}
	if cmd.Project.Dir == "" { // compose takes --workdir where --project-directory is not given
		cmd.Project.Dir, _ = root.GetString("workdir")
	}
	down := downFlags(&volumes, &downDry, &downForce)
	if err := down.Parse(rest[1:]); err != nil {
		return cmd.unreadable("docker compose down", err)
	}
	// One flag in compose (persistent), in two sets here: the later value wins.
	dryRun, force := rootDry, rootForce
	if down.Changed("dry-run") {
		dryRun = downDry
	}
	if down.Changed("force") {
		force = downForce
	}
	if root.Changed("force") || down.Changed("force") {
		cmd.Args = withoutForce(cmd.Args, at)
	}
	if volumes && !dryRun && !asksHelp(down) {
		cmd.Kind, cmd.Force = ComposeDown, force
	}
	return cmd
}

// withoutForce is argv without the guard's --force after compose (at index from).
func withoutForce(argv []string, from int) []string {
	out := append([]string(nil), argv[:from+1]...)
	for i, a := range argv[from+1:] {
		if a == "--" {
			return append(out, argv[from+1+i:]...)
		}
		if a != "--force" && !strings.HasPrefix(a, "--force=") {
			out = append(out, a)
		}
	}
	return out
}

// subcommand reads the flags of a management command (volume, system: only --help) and
// returns its subcommand and what follows.
func subcommand(name string, argv []string) (sub string, rest []string, err error) {
	fs := newFlags(name, false)
	if err := fs.Parse(argv); err != nil {
		return "", nil, err
	}
	if fs.NArg() == 0 {
		return "", nil, nil
	}
	return fs.Arg(0), fs.Args()[1:], nil
}

func parseVolume(cmd Command, argv []string) Command {
	sub, argv, err := subcommand("volume", argv)
	if err != nil {
		return cmd.unreadable("docker volume", err)
	}
	switch sub {
	case "rm", "remove": // cli/command/volume/remove.go
		fs := newFlags("volume rm", true)
		fs.BoolP("force", "f", false, "")
		if err := fs.Parse(argv); err != nil {
			return cmd.unreadable("docker volume rm", err)
		}
		if !asksHelp(fs) && fs.NArg() > 0 { // without a name docker refuses it
			cmd.Kind, cmd.Volumes = VolumeRm, fs.Args()
		}
	case "prune": // cli/command/volume/prune.go
		filter := opts.NewFilterOpt()
		fs := newFlags("volume prune", true)
		fs.BoolVarP(&cmd.All, "all", "a", false, "")
		fs.BoolP("force", "f", false, "")
		fs.Var(&filter, "filter", "")
		if err := fs.Parse(argv); err != nil {
			return cmd.unreadable("docker volume prune", err)
		}
		if !asksHelp(fs) {
			cmd.Kind, cmd.Filters = VolumePrune, filter.Value()
			cmd.All = cmd.All || hasAllFilter(cmd.Filters)
		}
	}
	return cmd
}

// parseSystem reads system prune (cli/command/system/prune.go). Its -a is about images: the
// CLI does not pass it on to the volume prune; it is kept here all the same, which can only
// put more volumes at risk. A filter "all" does reach the volume prune.
func parseSystem(cmd Command, argv []string) Command {
	sub, argv, err := subcommand("system", argv)
	if err != nil {
		return cmd.unreadable("docker system", err)
	}
	if sub != "prune" {
		return cmd
	}
	var volumes bool
	filter := opts.NewFilterOpt()
	fs := newFlags("system prune", true)
	fs.BoolP("force", "f", false, "")
	fs.BoolVarP(&cmd.All, "all", "a", false, "")
	fs.BoolVar(&volumes, "volumes", false, "")
	fs.Var(&filter, "filter", "")
	if err := fs.Parse(argv); err != nil {
		return cmd.unreadable("docker system prune", err)
	}
	if volumes && !asksHelp(fs) {
		cmd.Kind, cmd.Filters = SystemPrune, filter.Value()
		cmd.All = cmd.All || hasAllFilter(cmd.Filters)
	} else {
		cmd.All = false
	}
	return cmd
}

// hasAllFilter: the CLI turns -a into the filter all=true, and passes one typed by hand as
// it is; any value counts here, which can only put more volumes at risk.
func hasAllFilter(f client.Filters) bool { return len(f["all"]) > 0 }

// LabelsMatch applies the label filters of a prune (label=K, label=K=V, label!=K,
// label!=K=V) to a volume's labels; other filters (until) are ignored, which keeps more
// volumes at risk, never fewer.
func LabelsMatch(filters client.Filters, labels map[string]string) bool {
	for key, neg := range map[string]bool{"label": false, "label!": true} {
		for expr := range filters[key] {
			k, v, withValue := strings.Cut(expr, "=")
			got, has := labels[k]
			if match := has && (!withValue || got == v); match == neg {
				return false
			}
		}
	}
	return true
}
