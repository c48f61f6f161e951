package shellguard

import (
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
		{line: "volume prune --filter all=a", kind: VolumePrune},
		{line: "system prune -af", kind: Pass},
		{line: "system prune --volumes", kind: SystemPrune},
		{line: "--host tcp://h:2375 system prune -a --volumes -f", kind: SystemPrune, all: true, globals: "--host tcp://h:2375"},
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
		filters []string
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
		if got := LabelsMatch(tt.filters, labels); got != tt.want {
			t.Errorf("%v: %v, want %v", tt.filters, got, tt.want)
		}
	}
	if got := Parse(strings.Fields("volume prune -f --filter label=a=b --filter=until=1h")).Filters; !slices.Equal(got, []string{"label=a=b", "until=1h"}) {
		t.Errorf("filters %q", got)
	}
}
