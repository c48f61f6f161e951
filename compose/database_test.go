package compose

import (
	"slices"
	"strings"
	"testing"

	"github.com/compose-spec/compose-go/v2/types"
)

const pgImage = "postgres:16"

func env(kv ...string) types.MappingWithEquals {
	m := types.MappingWithEquals{}
	for _, s := range kv {
		k, v, _ := strings.Cut(s, "=")
		m[k] = &v
	}
	return m
}

func volumeAt(target string) []types.ServiceVolumeConfig {
	return []types.ServiceVolumeConfig{{Type: types.VolumeTypeVolume, Source: "pgdata", Target: target}}
}

// service builds a ServiceConfig: its fields sit in embedded specs that a literal cannot name.
func service(spec types.ContainerSpec, hc *types.HealthCheckConfig) types.ServiceConfig {
	svc := types.ServiceConfig{ContainerSpec: spec}
	svc.HealthCheck = hc
	return svc
}

var pgIsReady = &types.HealthCheckConfig{Test: types.HealthCheckTest{"CMD-SHELL", "pg_isready -U echo"}}

// TestPrograms: what a service runs, read from its entrypoint and command the way the engine
// combines them, through wrappers and into sh -c scripts.
func TestPrograms(t *testing.T) {
	cases := []struct {
		name                string
		entrypoint, command types.ShellCommand
		want                []string
	}{
		{"no override", nil, nil, []string{imageDefault}},
		{"entrypoint [] falls back to the image's command", types.ShellCommand{}, nil, []string{imageDefault}},
		{"options for the image's program", nil, types.ShellCommand{"-c", "shared_buffers=256MB"}, []string{imageDefault}},
		{"explicit postgres command", nil, types.ShellCommand{"postgres", "-c", "shared_buffers=256MB"}, []string{"postgres"}},
		{"command sleep", nil, types.ShellCommand{"sleep", "infinity"}, []string{"sleep"}},
		{"entrypoint sleep", types.ShellCommand{"sleep", "infinity"}, nil, []string{"sleep"}},
		{"entrypoint redis-server", types.ShellCommand{"redis-server"}, types.ShellCommand{"--save", ""}, []string{"redis-server"}},
		{"sh -c redis", types.ShellCommand{"sh", "-c", `exec redis-server --save "" --appendonly no`}, nil, []string{"redis-server"}},
		{"pg_dump loop", types.ShellCommand{"/bin/sh", "-ec",
			"while true; do\n  PGPASSWORD=$$X pg_dump -h postgres -U echo -Fc echo > /dumps/echo-$(date +%F).dump\n  sleep 3600\ndone"}, nil,
			[]string{"true", "date", "pg_dump", "sleep"}},
		{"entrypoint script with postgres", types.ShellCommand{"docker-entrypoint.sh"}, types.ShellCommand{"postgres", "-c", "fsync=off"}, []string{"postgres"}},
		{"entrypoint script with options", types.ShellCommand{"/usr/local/bin/docker-entrypoint.sh"}, types.ShellCommand{"-c", "fsync=off"}, []string{imageDefault}},
		{"tini and gosu", types.ShellCommand{"tini", "--", "gosu", "postgres", "postgres"}, nil, []string{"postgres"}},
		{"env prefix", types.ShellCommand{"env", "-i", "PGDATA=/srv/pg", "/usr/lib/postgresql/16/bin/postgres"}, nil, []string{"postgres"}},
		{"sh -c with $@", types.ShellCommand{"sh", "-c", `chown -R postgres /srv/pg && exec docker-entrypoint.sh "$@"`, "--"},
			types.ShellCommand{"postgres"}, []string{"chown", "postgres"}},
		{"psql in a loop is a client", types.ShellCommand{"bash", "-c", "until pg_isready -h db; do sleep 1; done; psql -h db postgres -c 'vacuum'"}, nil,
			[]string{"pg_isready", "sleep", "psql"}},
		{"a script file", types.ShellCommand{"sh", "/scripts/start.sh"}, nil, []string{"sh"}},
		{"a custom program", types.ShellCommand{"/usr/local/bin/start-db"}, nil, []string{"start-db"}},
	}
	for _, c := range cases {
		got := programs(types.ServiceConfig{ContainerSpec: types.ContainerSpec{Image: pgImage, Entrypoint: c.entrypoint, Command: c.command}})
		if !slices.Equal(got, c.want) {
			t.Errorf("%s: programs = %q, want %q", c.name, got, c.want)
		}
	}
}

// TestChooseDatabase: which service is the database when --db-service is not given.
func TestChooseDatabase(t *testing.T) {
	db := service(types.ContainerSpec{Image: pgImage, Environment: env("POSTGRES_PASSWORD=x"), Volumes: volumeAt("/var/lib/postgresql/data")}, pgIsReady)
	sleeper := service(types.ContainerSpec{Image: pgImage, Entrypoint: types.ShellCommand{"sleep", "infinity"}, Environment: env("POSTGRES_PASSWORD=x")}, nil)
	redis := service(types.ContainerSpec{Image: pgImage, Entrypoint: types.ShellCommand{"sh", "-c", "exec redis-server"}}, nil)
	dumper := service(types.ContainerSpec{Image: pgImage, Environment: env("POSTGRES_PASSWORD=x"),
		Entrypoint: types.ShellCommand{"sh", "-c", "while true; do pg_dump -h postgres echo > /dumps/echo.sql; sleep 3600; done"}}, pgIsReady)
	bare := service(types.ContainerSpec{Image: pgImage, Environment: env("POSTGRES_HOST_AUTH_METHOD=trust")}, nil)
	labelled := func(svc types.ServiceConfig) types.ServiceConfig {
		svc.Labels = types.Labels{RoleLabel: "database"}
		return svc
	}
	cases := []struct {
		name     string
		services map[string]types.ServiceConfig
		want     string
		tied     []string
		runOther []string
	}{
		{name: "the issue's stack: overrides are not the database",
			services: map[string]types.ServiceConfig{"postgres": db, "echo": sleeper, "redis": redis, "backup": dumper},
			want:     "postgres", runOther: []string{"backup", "echo", "redis"}},
		{name: "explicit postgres command is the database",
			services: map[string]types.ServiceConfig{"db": service(types.ContainerSpec{Image: "localbuild/all-in-one", Command: types.ShellCommand{"postgres", "-c", "shared_buffers=64MB"}}, nil),
				"app": service(types.ContainerSpec{Image: "localbuild/all-in-one", Command: types.ShellCommand{"start-app"}, Environment: env("POSTGRES_PASSWORD=x", "POSTGRES_HOST=db")}, nil)},
			want: "db"},
		{name: "a locally built image by its password",
			services: map[string]types.ServiceConfig{"db": service(types.ContainerSpec{Image: "localbuild/db", Environment: env("POSTGRES_PASSWORD=x")}, nil), "web": service(types.ContainerSpec{Image: "nginx"}, nil)},
			want:     "db"},
		{name: "more evidence wins over a bare postgres image",
			services: map[string]types.ServiceConfig{"main": db, "scratch": bare}, want: "main"},
		{name: "POSTGRES_PASSWORD_FILE counts as the password",
			services: map[string]types.ServiceConfig{
				"db":      service(types.ContainerSpec{Image: pgImage, Environment: env("POSTGRES_PASSWORD_FILE=/run/secrets/pg"), Volumes: volumeAt("/var/lib/postgresql")}, nil),
				"scratch": bare},
			want: "db"},
		{name: "the volume must be at PGDATA",
			services: map[string]types.ServiceConfig{
				"db":    service(types.ContainerSpec{Image: pgImage, Environment: env("POSTGRES_PASSWORD=x", "PGDATA=/srv/pg/data"), Volumes: volumeAt("/srv/pg")}, nil),
				"other": service(types.ContainerSpec{Image: pgImage, Environment: env("POSTGRES_PASSWORD=x"), Volumes: volumeAt("/data")}, nil)},
			want: "db"},
		{name: "a read-only mount at PGDATA is not the server's",
			services: map[string]types.ServiceConfig{
				"db": service(types.ContainerSpec{Image: pgImage, Environment: env("POSTGRES_PASSWORD=x"), Volumes: volumeAt("/var/lib/postgresql/data")}, nil),
				"reader": service(types.ContainerSpec{Image: pgImage, Environment: env("POSTGRES_PASSWORD=x"),
					Volumes: []types.ServiceVolumeConfig{{Type: types.VolumeTypeVolume, Source: "pgdata", Target: "/var/lib/postgresql/data", ReadOnly: true}}}, nil)},
			want: "db"},
		{name: "the pg_isready healthcheck breaks a tie",
			services: map[string]types.ServiceConfig{"a": db, "b": service(types.ContainerSpec{Image: pgImage, Environment: env("POSTGRES_PASSWORD=x"), Volumes: volumeAt("/var/lib/postgresql/data")}, nil)},
			want:     "a"},
		{name: "a backup image that connects elsewhere loses to the server",
			services: map[string]types.ServiceConfig{
				"db":     service(types.ContainerSpec{Image: "localbuild/pg", Environment: env("POSTGRES_PASSWORD=x"), Volumes: volumeAt("/var/lib/postgresql/data")}, nil),
				"backup": service(types.ContainerSpec{Image: "prodrigestivill/postgres-backup-local", Environment: env("POSTGRES_HOST=db", "POSTGRES_PASSWORD=x")}, nil)},
			want: "db"},
		{name: "equal evidence ties",
			services: map[string]types.ServiceConfig{"a": db, "b": db, "echo": sleeper}, tied: []string{"a", "b"}, runOther: []string{"echo"}},
		{name: "the label wins over evidence",
			services: map[string]types.ServiceConfig{"main": db, "scratch": labelled(bare)}, want: "scratch"},
		{name: "the label wins over an override",
			services: map[string]types.ServiceConfig{"main": db, "custom": labelled(service(types.ContainerSpec{Image: "x", Entrypoint: types.ShellCommand{"/start.sh"}}, nil))},
			want:     "custom"},
		{name: "two labels tie",
			services: map[string]types.ServiceConfig{"a": labelled(db), "b": labelled(bare)}, tied: []string{"a", "b"}},
		{name: "nothing left",
			services: map[string]types.ServiceConfig{"echo": sleeper, "redis": redis}, runOther: []string{"echo", "redis"}},
	}
	for _, c := range cases {
		got := chooseDatabase(c.services)
		if got.Service != c.want || !slices.Equal(got.Tied, c.tied) || !slices.Equal(got.RunOther, c.runOther) {
			t.Errorf("%s: got %+v, want service %q tied %v runOther %v", c.name, got, c.want, c.tied, c.runOther)
		}
	}
}

func TestSimpleCommands(t *testing.T) {
	got := simpleCommands(`set -e; while true; do X=1 pg_dump -h 'my host' "a b" > /f 2>&1 && echo done | tee -a /log; sleep 60; done & wait`)
	want := [][]string{{"set", "-e"}, {"true"}, {"pg_dump", "-h", "my host", "a b", ">", "/f", "2>"}, {"1"}, {"echo", "done"},
		{"tee", "-a", "/log"}, {"sleep", "60"}, {"wait"}}
	if !slices.EqualFunc(got, want, slices.Equal) {
		t.Errorf("simpleCommands = %q\nwant %q", got, want)
	}
}

// TestNoDatabaseNamesSetAside: when every lookalike runs something else, the error says so.
func TestNoDatabaseNamesSetAside(t *testing.T) {
	sleeper := service(types.ContainerSpec{Image: pgImage, Command: types.ShellCommand{"sleep", "infinity"}}, nil)
	p := &types.Project{Name: "p", Services: types.Services{"echo": sleeper, "web": service(types.ContainerSpec{Image: "nginx"}, nil)}}
	_, err := findDatabase(p, "")
	if err == nil || !IsUserError(err) || !strings.Contains(err.Error(), "not postgres by their entrypoint or command: echo") ||
		!strings.Contains(err.Error(), "--db-service") {
		t.Errorf("err = %v", err)
	}
}
