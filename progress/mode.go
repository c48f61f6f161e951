// Package progress shows what a long command is doing, through the progress writer docker compose
// itself uses (cmd/display): bars with sizes in a terminal, timed lines in a log, JSON events for
// a program. The domain packages report parts (tasks) and bytes; they never print.
package progress

import (
	"fmt"
	"strings"
)

// Mode is how progress is drawn, as `docker compose --progress` and `docker build --progress` take it.
type Mode string

const (
	Auto  Mode = "auto"  // TTY when stderr is a terminal, else Plain
	TTY   Mode = "tty"   // a block of rows redrawn in place, with bars and timers
	Plain Mode = "plain" // one line per event, each with the time since the start
	JSON  Mode = "json"  // one JSON object per line
	Quiet Mode = "quiet" // nothing
)

// Env is echo-backup's own variable for --progress; EnvFallbacks are the docker tools' ones, read
// in this order when it is unset, so a shell that set them for compose or buildx gets the same here.
const Env = "ECHOBACKUP_PROGRESS"

var EnvFallbacks = []string{"COMPOSE_PROGRESS", "BUILDKIT_PROGRESS"}

// ParseMode accepts the modes and "none" (compose's alias of quiet) in any case; "" is Auto.
func ParseMode(s string) (Mode, error) {
	switch m := Mode(strings.ToLower(strings.TrimSpace(s))); m {
	case "":
		return Auto, nil
	case Auto, TTY, Plain, JSON, Quiet:
		return m, nil
	case "none":
		return Quiet, nil
	}
	return "", fmt.Errorf("--progress must be auto, tty, plain, json or quiet, not %q", s)
}

// FromEnv is the mode the environment asks for: ECHOBACKUP_PROGRESS, else the first of the docker
// tools' variables that holds a mode we know (buildx also has "rawjson", which is not ours).
func FromEnv(getenv func(string) string) (Mode, bool) {
	if v := getenv(Env); v != "" {
		if m, err := ParseMode(v); err == nil {
			return m, true
		}
		return Auto, false // a mode we cannot draw: as if unset
	}
	for _, name := range EnvFallbacks {
		if m, err := ParseMode(getenv(name)); err == nil && getenv(name) != "" {
			return m, true
		}
	}
	return Auto, false
}

// Resolve turns Auto into TTY or Plain, as compose does: by whether stderr, where progress
// goes, is a terminal (stdout may well be a pipe: `save --format json | jq`).
func Resolve(m Mode, stderrIsTerminal bool) Mode {
	if m != Auto {
		return m
	}
	if stderrIsTerminal {
		return TTY
	}
	return Plain
}
