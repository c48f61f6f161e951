package shellguard

import (
	"os/exec"
	"slices"
	"strings"
	"testing"
)

func TestParse(t *testing.T) {
	tests := []struct {
		line    string
		kind    Kind
		project Project
		volumes []string
		all     bool
		force   bool
		args    string // "" means the line itself
		globals string
	}{
		{line: "ps -a", kind: Pass},
		{line: "rm -f web", kind: Pass},
		{line: "compose down", kind: Pass},
		{line: "compose up -d", kind: Pass},
		{line: "compose down -v", kind: ComposeDown},
		{line: "compose down --volumes --remove-orphans", kind: ComposeDown},
		{line: "compose down --volumes=false", kind: Pass},
		{line: "compose down -t 5 -v", kind: ComposeDown},
		{line: "compose down --rmi all -v web", kind: ComposeDown},
		{line: "compose -f a.yml -p echo --project-directory /srv/echo down -v", kind: ComposeDown,
			project: Project{Name: "echo", Files: []string{"a.yml"}, Dir: "/srv/echo"}},
		{line: "compose --file=a.yml -fb.yml --env-file .env.prod --profile tools -p=echo down -v", kind: ComposeDown,
			project: Project{Name: "echo", Files: []string{"a.yml", "b.yml"}, EnvFiles: []string{".env.prod"}, Profiles: []string{"tools"}}},
		{line: "compose --dry-run down -v", kind: Pass},
		{line: "compose -p down ps", kind: Pass}, // "down" is the project's name
		{line: "compose down -v --force", kind: ComposeDown, force: true, args: "compose down -v"},
		{line: "compose --force -p x down -v", kind: ComposeDown, force: true, args: "compose -p x down -v", project: Project{Name: "x"}},
		{line: "compose down --force", kind: Pass, args: "compose down"},
		{line: "compose up --force-recreate", kind: Pass},
		{line: "--context prod -H unix:///x.sock -D compose down -v", kind: ComposeDown, globals: "--context prod -H unix:///x.sock -D"},
		{line: "-c=prod --config /tmp/c compose -p e down -v", kind: ComposeDown, project: Project{Name: "e"}, globals: "-c=prod --config /tmp/c"},
		{line: "volume ls", kind: Pass},
		{line: "volume rm", kind: Pass},
		{line: "volume rm -f a b", kind: VolumeRm, volumes: []string{"a", "b"}},
		{line: "volume remove a", kind: VolumeRm, volumes: []string{"a"}},
		{line: "volume prune", kind: VolumePrune},
		{line: "volume prune -af", kind: VolumePrune, all: true},
		{line: "volume prune --filter label=a --all", kind: VolumePrune, all: true},
		{line: "volume prune --filter all=a", kind: VolumePrune, all: true},
		{line: "system prune -af", kind: Pass},
		{line: "system prune --volumes", kind: SystemPrune},
		{line: "--host tcp://h:2375 system prune -a --volumes -f", kind: SystemPrune, all: true, globals: "--host tcp://h:2375"},

		// Spellings docker and compose accept beyond the plain ones.
		{line: "compose down --volume", kind: ComposeDown}, // compose normalises it to --volumes
		{line: "compose down --volumes=1", kind: ComposeDown},
		{line: "compose down --volumes=True", kind: ComposeDown},
		{line: "compose down -v=1", kind: ComposeDown},
		{line: "compose down -vt 5", kind: ComposeDown},
		{line: "compose down -t5 --remove-orphans -v", kind: ComposeDown},
		{line: "compose down web -v", kind: ComposeDown},
		{line: "compose down --volumes=0", kind: Pass},
		{line: "compose down -v --volumes=false", kind: Pass},
		{line: "compose down -- -v", kind: Pass}, // a service named -v
		{line: "compose down -v --dry-run", kind: Pass},
		{line: "compose --dry-run=false down -v", kind: ComposeDown},
		{line: "compose --insecure-registry r down -v", kind: ComposeDown},
		{line: "compose --parallel 2 --ansi never --progress plain -p e down -v", kind: ComposeDown, project: Project{Name: "e"}},
		{line: "compose --workdir /srv/echo down -v", kind: ComposeDown, project: Project{Dir: "/srv/echo"}},
		{line: "compose down -v --force=true", kind: ComposeDown, force: true, args: "compose down -v"},
		{line: "compose down -v --help", kind: Pass},
		{line: "compose -v down -v", kind: ComposeDown}, // compose's -v prints its version only without a command
		{line: "compose --help down -v", kind: ComposeDown},
		{line: "-v volume rm a", kind: VolumeRm, volumes: []string{"a"}, globals: "-v"},
		{line: "volume --help rm a", kind: VolumeRm, volumes: []string{"a"}},
		{line: "-D -l=warn compose down -v", kind: ComposeDown, globals: "-D -l=warn"},
		{line: "system prune --volumes=1", kind: SystemPrune},
		{line: "system prune --volumes --filter all=true", kind: SystemPrune, all: true},
		{line: "system prune --volumes=false -af", kind: Pass},
		{line: "volume prune --all=1", kind: VolumePrune, all: true},
		{line: "volume prune --all=false", kind: VolumePrune},
		{line: "volume prune --filter all=true", kind: VolumePrune, all: true},
		{line: "volume prune --filter=ALL=1", kind: VolumePrune, all: true},
		{line: "volume prune -fa", kind: VolumePrune, all: true},
		{line: "volume rm -- -f", kind: VolumeRm, volumes: []string{"-f"}},
		{line: "volume rm --help a", kind: Pass},
		{line: "--debug volume rm a", kind: VolumeRm, volumes: []string{"a"}, globals: "--debug"},

		// What the guard cannot read as docker would, it does not let through unseen.
		{line: "compose down --no-such-flag -v", kind: Unreadable},
		{line: "compose --no-such-flag down -v", kind: Unreadable},
		{line: "--no-such-flag volume rm a", kind: Unreadable},
		{line: "volume rm -x a", kind: Unreadable},
		{line: "system prune --volumes --filter nonsense", kind: Unreadable},
		{line: "system df", kind: Pass},
		{line: "echobackup save", kind: Pass},
	}
	for _, tt := range tests {
		t.Run(tt.line, func(t *testing.T) {
			argv := strings.Fields(tt.line)
			got := Parse(argv)
			if got.Kind != tt.kind {
				t.Errorf("kind %v, want %v", got.Kind, tt.kind)
			}
			if (got.Err != nil) != (tt.kind == Unreadable) {
				t.Errorf("error %v with kind %v", got.Err, got.Kind)
			}
			if tt.kind == ComposeDown && !equalProject(got.Project, tt.project) {
				t.Errorf("project %+v, want %+v", got.Project, tt.project)
			}
			if !slices.Equal(got.Volumes, tt.volumes) || got.All != tt.all || got.Force != tt.force {
				t.Errorf("volumes %v all %v force %v, want %v %v %v", got.Volumes, got.All, got.Force, tt.volumes, tt.all, tt.force)
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

func equalProject(a, b Project) bool {
	return a.Name == b.Name && a.Dir == b.Dir && slices.Equal(a.Files, b.Files) &&
		slices.Equal(a.EnvFiles, b.EnvFiles) && slices.Equal(a.Profiles, b.Profiles)
}

func TestScript(t *testing.T) {
	for _, sh := range Shells {
		s, err := Script(sh)
		if err != nil || !strings.Contains(s, GuardCommand+" --shell "+sh) {
			t.Errorf("%s: %v\n%s", sh, err, s)
		}
	}
	if _, err := Script("csh"); err == nil {
		t.Error("csh accepted")
	}
}

func TestLabelsMatch(t *testing.T) {
	labels := map[string]string{"com.docker.compose.project": "echo", "x": ""}
	for _, tt := range []struct {
		filters []string // as typed after --filter
		want    bool
	}{
		{nil, true},
		{[]string{"label=com.docker.compose.project=echo"}, true},
		{[]string{"label=com.docker.compose.project=other"}, false},
		{[]string{"label=x"}, true},
		{[]string{"label!=x"}, false},
		{[]string{"label!=com.docker.compose.project=other"}, true},
		{[]string{"until=24h", "label=y"}, false},
	} {
		args := []string{"volume", "prune"}
		for _, f := range tt.filters {
			args = append(args, "--filter", f)
		}
		if got := LabelsMatch(Parse(args).Filters, labels); got != tt.want {
			t.Errorf("%v: %v, want %v", tt.filters, got, tt.want)
		}
	}
	got := Parse(strings.Fields("volume prune -f --filter label=a=b --filter=until=1h --filter label!=c")).Filters
	if !got["label"]["a=b"] || !got["until"]["1h"] || !got["label!"]["c"] || len(got) != 3 {
		t.Errorf("filters %v", got)
	}
}

// quoteWords are words a shell must not change on their way through eval.
var quoteWords = []string{"plain", "it's", "two\nlines", "trailing\n", "", "$HOME `id` $(id)", "=ls", "~", "back\\slash\\'", "{{x}}", "*", "a b\tc"}

// TestQuoteBash runs bash's eval on the quoted line, as the function does.
func TestQuoteBash(t *testing.T) {
	bash, err := exec.LookPath("bash")
	if err != nil {
		t.Skip("no bash")
	}
	out, err := exec.Command(bash, "-c", `eval "set -- $1"; printf '%s\0' "$@"`, "_", Quote("bash", quoteWords)).Output()
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Split(strings.TrimSuffix(string(out), "\x00"), "\x00"); !slices.Equal(got, quoteWords) {
		t.Errorf("bash eval gave %q, want %q", got, quoteWords)
	}
}

// TestQuoteFish: fish is not installed here. Its command substitution splits on newlines and
// eval joins the pieces with spaces, so the line holds none; in its single quotes only \\
// and \' are escapes, and a newline outside quotes is \n.
func TestQuoteFish(t *testing.T) {
	got := Quote("fish", []string{"it's", "two\nlines", `back\slash`, ""})
	if want := `'it\'s' 'two'\n'lines' 'back\\slash' ''`; got != want {
		t.Errorf("fish quoting %s, want %s", got, want)
	}
	if strings.Contains(Quote("fish", quoteWords), "\n") {
		t.Error("a newline in the fish line")
	}
}
