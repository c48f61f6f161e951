package schedule

import (
	"path/filepath"
	"strconv"
	"strings"

	"github.com/echo-backup/echo-backup/retention"
)

// dockerEnv is what the docker CLI reads from the environment to find its engine and plugins;
// cron starts jobs with almost none, so the entry carries the values set at install time.
var dockerEnv = []string{"DOCKER_CONFIG", "DOCKER_HOST", "DOCKER_CONTEXT", "DOCKER_TLS_VERIFY", "DOCKER_CERT_PATH"}

// Spec is the project as install loaded it, for a job that loads it again the same way.
type Spec struct {
	Docker       string // the docker CLI, by absolute path
	Project      string
	Folder       string   // the project folder, absolute
	ComposeFiles []string // absolute, as compose resolved them
	EnvFiles     []string // as given on the command line
	Profiles     []string // as given on the command line; COMPOSE_PROFILES is added
	DBService    string
	Dir          string // the backup folder, absolute
	Policy       retention.Policy
	// Protect: each run also protects the project (the sentinel), taking in volumes the
	// project gained since.
	Protect bool
	Context string              // the docker context of this command: one chosen with --context must be carried
	Getenv  func(string) string // the environment install runs in
}

// BuildJob is the command line cron runs: absolute paths for the docker CLI, the compose files,
// the env files and the backup folder, and the environment that found the engine at install
// time. The ping URL is not in it: the job reads it from the backup folder.
func BuildJob(s Spec) (Job, error) {
	argv := []string{s.Docker, "echobackup", "--project-directory", s.Folder, "-p", s.Project}
	for _, f := range s.ComposeFiles {
		argv = append(argv, "-f", f)
	}
	for _, f := range s.EnvFiles {
		abs, err := filepath.Abs(f)
		if err != nil {
			return Job{}, err
		}
		argv = append(argv, "--env-file", abs)
	}
	profiles := append([]string{}, s.Profiles...)
	if env := s.Getenv("COMPOSE_PROFILES"); env != "" {
		profiles = append(profiles, strings.Split(env, ",")...)
	}
	for _, p := range profiles {
		argv = append(argv, "--profile", p)
	}
	if s.DBService != "" {
		argv = append(argv, "--db-service", s.DBService)
	}
	pol := s.Policy
	argv = append(argv, "schedule", "run")
	if s.Protect {
		argv = append(argv, "--protect")
	}
	argv = append(argv, "-o", s.Dir,
		"--keep-last", strconv.Itoa(pol.Last), "--keep-daily", strconv.Itoa(pol.Daily),
		"--keep-weekly", strconv.Itoa(pol.Weekly), "--keep-monthly", strconv.Itoa(pol.Monthly))
	env := map[string]string{}
	for _, k := range dockerEnv {
		if v := s.Getenv(k); v != "" {
			env[k] = v
		}
	}
	if v := env["DOCKER_CONFIG"]; v != "" {
		abs, err := filepath.Abs(v)
		if err != nil {
			return Job{}, err
		}
		env["DOCKER_CONFIG"] = abs
	}
	// A context chosen with `docker context use` lives in the config; one chosen with --context
	// for this command only must be carried.
	if s.Context != "" && s.Context != "default" && env["DOCKER_HOST"] == "" {
		env["DOCKER_CONTEXT"] = s.Context
	}
	return Job{Project: s.Project, Folder: s.Folder, Dir: s.Dir, Log: LogPath(s.Dir), Env: env, Argv: argv}, nil
}
