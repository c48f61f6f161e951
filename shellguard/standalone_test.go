package shellguard

import (
	"os/exec"
	"slices"
	"strings"
	"testing"
)

// TestParseStandalone: the lines of the standalone docker-compose, in compose v2's and v1
// 1.29's spellings, read as the same `docker compose` line would.
func TestParseStandalone(t *testing.T) {
	tests := []struct {
		line    string
		kind    Kind
		project Project
		force   bool
		args    string // "" means the line itself
		globals string
	}{
		{line: "down", kind: Pass},
		{line: "up -d", kind: Pass},
		{line: "ps", kind: Pass},
		{line: "down -v", kind: ComposeDown},
		{line: "down --volumes --remove-orphans -t 1", kind: ComposeDown},
		{line: "down --volumes=false", kind: Pass},
		{line: "down -vt 5", kind: ComposeDown},
		{line: "-f a.yml -f b.yml -p echo --project-directory /srv/echo --env-file .env.prod down -v", kind: ComposeDown,
			project: Project{Name: "echo", Files: []string{"a.yml", "b.yml"}, Dir: "/srv/echo", EnvFiles: []string{".env.prod"}}},
		{line: "--file=a.yml --project-name=echo --profile tools down --rmi local -v", kind: ComposeDown,
			project: Project{Name: "echo", Files: []string{"a.yml"}, Profiles: []string{"tools"}}},
		// compose v1 1.29's root flags: --verbose, --no-ansi, --log-level, -H, --tls…, -c, --skip-hostname-check.
		{line: "--verbose --no-ansi -p echo down --volumes", kind: ComposeDown, project: Project{Name: "echo"}, globals: "--debug"},
		{line: "--log-level WARNING -H unix:///x.sock --tls --skip-hostname-check down -v", kind: ComposeDown,
			globals: "--log-level WARNING -H unix:///x.sock --tls"},
		{line: "-c prod --compatibility down -v", kind: ComposeDown, globals: "--context prod"},
		{line: "--host=tcp://h:2376 down -v", kind: ComposeDown, globals: "--host tcp://h:2376"},
		{line: "-v", kind: Pass},                // the version
		{line: "--version down -v", kind: Pass}, // v2: `compose version down -v`
		{line: "down -v --help", kind: Pass},
		{line: "-h down -v", kind: ComposeDown}, // help before the command is ignored, as for docker compose
		{line: "down -v --dry-run", kind: Pass},
		// rm -v removes anonymous volumes only (the backup keeps none of those): it passes.
		{line: "rm -sfv", kind: Pass},
		{line: "rm -v db", kind: Pass},
		{line: "down -v --force", kind: ComposeDown, force: true, args: "down -v"},
		{line: "--force -p x down -v", kind: ComposeDown, force: true, args: "-p x down -v", project: Project{Name: "x"}},
		{line: "down --no-such-flag -v", kind: Unreadable},
		{line: "--no-such-flag down -v", kind: Unreadable},
	}
	for _, tt := range tests {
		t.Run(tt.line, func(t *testing.T) {
			got := ParseStandalone(strings.Fields(tt.line))
			if got.Kind != tt.kind {
				t.Errorf("kind %v, want %v (%v)", got.Kind, tt.kind, got.Err)
			}
			if tt.kind == ComposeDown && !equalProject(got.Project, tt.project) {
				t.Errorf("project %+v, want %+v", got.Project, tt.project)
			}
			if got.Force != tt.force {
				t.Errorf("force %v, want %v", got.Force, tt.force)
			}
			want := tt.args
			if want == "" {
				want = tt.line
			}
			if strings.Join(got.Args, " ") != want {
				t.Errorf("args %q, want %q", got.Args, want)
			}
			if strings.Join(got.GlobalArgs, " ") != tt.globals {
				t.Errorf("globals %q, want %q", got.GlobalArgs, tt.globals)
			}
		})
	}
}

func TestParseSudo(t *testing.T) {
	tests := []struct {
		line    string
		prefix  string
		program string
		args    string
		unknown string
	}{
		{line: "docker compose down -v", program: "docker", args: "compose down -v"},
		{line: "-E docker volume rm a", prefix: "-E", program: "docker", args: "volume rm a"},
		{line: "-E -u alice -H docker volume prune", prefix: "-E -u alice -H", program: "docker", args: "volume prune"},
		{line: "-EHu alice docker ps", prefix: "-EHu alice", program: "docker", args: "ps"},
		{line: "--preserve-env=DOCKER_CONFIG,DOCKER_HOST --user=root docker-compose down -v",
			prefix: "--preserve-env=DOCKER_CONFIG,DOCKER_HOST --user=root", program: "docker-compose", args: "down -v"},
		{line: "-n -- docker compose down -v", prefix: "-n --", program: "docker", args: "compose down -v"},
		{line: "DOCKER_HOST=unix:///x.sock docker volume rm a", prefix: "DOCKER_HOST=unix:///x.sock", program: "docker", args: "volume rm a"},
		{line: "-D /srv/echo docker compose down -v", prefix: "-D /srv/echo", program: "docker", args: "compose down -v"},
		{line: "apt-get remove docker", program: ""},
		{line: "/usr/bin/docker volume rm a", program: ""}, // an absolute path: as for the docker function, not read
		{line: "", program: ""},
		{line: "-i docker compose down -v", unknown: "-i"},
		{line: "-s docker volume rm a", unknown: "-s"},
		{line: "-Ei docker volume rm a", unknown: "-i"},
		{line: "-b docker volume prune", unknown: "-b"},
		{line: "-S docker volume rm a", unknown: "-S"},
		{line: "--login docker volume rm a", unknown: "--login"},
		{line: "-h", unknown: "-h"},
	}
	for _, tt := range tests {
		t.Run(tt.line, func(t *testing.T) {
			got := ParseSudo(strings.Fields(tt.line))
			if got.Unknown != tt.unknown {
				t.Fatalf("unknown %q, want %q", got.Unknown, tt.unknown)
			}
			if tt.unknown != "" {
				return
			}
			if strings.Join(got.Prefix, " ") != tt.prefix || got.Program != tt.program {
				t.Errorf("prefix %q program %q, want %q %q", got.Prefix, got.Program, tt.prefix, tt.program)
			}
			if tt.program != "" && !slices.Equal(got.Args, strings.Fields(tt.args)) {
				t.Errorf("args %q, want %q", got.Args, tt.args)
			}
		})
	}
}

// TestQuoteZshFish runs each shell's eval on the quoted line, as the functions do (fish reads
// it through a command substitution, which splits on newlines).
func TestQuoteZshFish(t *testing.T) {
	scripts := map[string]string{
		"zsh":  `eval "set -- $1"; printf '%s\0' "$@"`,
		"fish": `set -l line (printf '%s' $argv[1]); eval set args $line; printf '%s\0' $args`,
	}
	for _, sh := range []string{"zsh", "fish"} {
		path, err := exec.LookPath(sh)
		if err != nil {
			t.Logf("no %s here: scripts/test.sh installs it", sh)
			continue
		}
		args := []string{"-c", scripts[sh], "_", Quote(sh, quoteWords)}
		if sh == "fish" {
			args = []string{"--no-config", "-c", scripts[sh], Quote(sh, quoteWords)}
		}
		out, err := exec.Command(path, args...).Output()
		if err != nil {
			t.Fatalf("%s: %v", sh, err)
		}
		if got := strings.Split(strings.TrimSuffix(string(out), "\x00"), "\x00"); !slices.Equal(got, quoteWords) {
			t.Errorf("%s eval gave %q, want %q", sh, got, quoteWords)
		}
	}
}

// TestScriptFunctions: every shell gets the three functions, each asking the guard with its
// --program, and the shells that are here read the script without a syntax error.
func TestScriptFunctions(t *testing.T) {
	for _, sh := range Shells {
		s, err := Script(sh)
		if err != nil {
			t.Fatal(err)
		}
		for _, want := range []string{"--program docker-compose", "--program sudo", "command docker-compose", "command sudo"} {
			if !strings.Contains(s, want) {
				t.Errorf("%s script lacks %q", sh, want)
			}
		}
		path, err := exec.LookPath(sh)
		if err != nil {
			t.Logf("no %s here to read the script", sh)
			continue
		}
		// fish -n -c reports a syntax error but exits 0: any output is one.
		if out, err := exec.Command(path, "-n", "-c", s).CombinedOutput(); err != nil || len(out) > 0 {
			t.Errorf("%s -n: %v\n%s", sh, err, out)
		}
	}
}

func TestUnder(t *testing.T) {
	got := under("/srv/echo", []string{"compose.yaml", "/etc/x.yml", "../other/c.yml"})
	if want := []string{"/srv/echo/compose.yaml", "/etc/x.yml", "/srv/other/c.yml"}; !slices.Equal(got, want) {
		t.Errorf("under: %q, want %q", got, want)
	}
}
