package shellguard

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/compose-spec/compose-go/v2/types"
	"github.com/docker/cli/cli/command"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/client"

	"github.com/echo-backup/echo-backup/compose"
	"github.com/echo-backup/echo-backup/guard"
)

// loadProject loads a compose file written into a new folder, as the CLI would.
func loadProject(t *testing.T, yaml string) *types.Project {
	t.Helper()
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "compose.yaml"), []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	cli, err := command.NewDockerCli()
	if err != nil {
		t.Fatal(err)
	}
	p, err := compose.Load(context.Background(), cli, compose.ProjectOptions{ProjectDir: dir, ProjectName: "echo"})
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// echoProject is Echo-shaped: PostgreSQL with its data in a named volume, and the app.
func echoProject(t *testing.T) *types.Project {
	return loadProject(t, `services:
  db:
    image: postgres:16
    environment: {POSTGRES_PASSWORD: secret}
    volumes: [pgdata:/var/lib/postgresql/data]
  echo:
    image: echo:1
volumes:
  pgdata:
`)
}

// fakeEngine answers what Endangered asks: containers (a sentinel when held) and volumes.
type fakeEngine struct {
	client.APIClient // nil: any other call panics
	held             bool
}

func (e *fakeEngine) ContainerList(_ context.Context, o client.ContainerListOptions) (client.ContainerListResult, error) {
	if !e.held || len(o.Filters["label"]) == 0 || !o.Filters["label"][guard.LabelSentinel+"=1"] {
		return client.ContainerListResult{}, nil
	}
	return client.ContainerListResult{Items: []container.Summary{{ID: "sentinel", State: container.StateRunning,
		Labels: map[string]string{guard.LabelVolumes: "echo_pgdata"}}}}, nil
}

func (e *fakeEngine) VolumeInspect(context.Context, string, client.VolumeInspectOptions) (client.VolumeInspectResult, error) {
	return client.VolumeInspectResult{}, nil
}

func options(t *testing.T, project *types.Project, loadErr error, api compose.Engine) (Options, *int) {
	connects := 0
	return Options{
		Load: func(context.Context, compose.ProjectOptions) (*types.Project, error) { return project, loadErr },
		Connect: func(context.Context) (compose.Engine, error) {
			connects++
			if api == nil {
				return nil, errors.New("no engine")
			}
			return api, nil
		},
		Getenv: func(string) string { return "" },
	}, &connects
}

func TestComposeDownEndangersTheWholeProject(t *testing.T) {
	o, _ := options(t, echoProject(t), nil, &fakeEngine{})
	risks, err := Endangered(context.Background(), Parse([]string{"compose", "down", "-v"}), o)
	if err != nil {
		t.Fatal(err)
	}
	if len(risks) != 1 || risks[0].Held || !risks[0].StopApps || fmt.Sprint(risks[0].Volumes) != "[echo_pgdata]" {
		t.Fatalf("risks %+v", risks)
	}
}

func TestHeldVolumesNeedNoBackup(t *testing.T) {
	o, _ := options(t, echoProject(t), nil, &fakeEngine{held: true})
	risks, err := Endangered(context.Background(), Parse([]string{"compose", "down", "-v"}), o)
	if err != nil {
		t.Fatal(err)
	}
	if len(risks) != 1 || !risks[0].Held {
		t.Fatalf("risks %+v", risks)
	}
}

func TestAProjectWithoutPostgresPassesWithoutTheEngine(t *testing.T) {
	p := loadProject(t, "services:\n  web:\n    image: nginx\n")
	o, connects := options(t, p, nil, nil)
	risks, err := Endangered(context.Background(), Parse([]string{"compose", "down", "-v"}), o)
	if err != nil || len(risks) != 0 || *connects != 0 {
		t.Fatalf("risks %+v, err %v, %d connections", risks, err, *connects)
	}
}

func TestNoComposeFilePasses(t *testing.T) {
	o, connects := options(t, nil, &compose.UserError{Err: errors.New("no configuration file provided")}, nil)
	risks, err := Endangered(context.Background(), Parse([]string{"compose", "down", "-v"}), o)
	if err != nil || len(risks) != 0 || *connects != 0 {
		t.Fatalf("risks %+v, err %v, %d connections", risks, err, *connects)
	}
}

func TestAnEngineThatCannotBeReachedStopsTheLine(t *testing.T) {
	o, _ := options(t, nil, nil, nil)
	if _, err := Endangered(context.Background(), Parse([]string{"volume", "prune", "-a"}), o); err == nil {
		t.Fatal("no error without an engine: the prune would run unseen")
	}
}
