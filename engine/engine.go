// Package engine is what echo-backup does on a Docker engine below the compose project: exec
// in a container with its output and exit code, short-lived helper containers labelled with
// their owner (and the reaping of those a killed command left), copying a tar stream in. It
// knows nothing of compose files or roles, so postgres and the lower packages use it without
// loading compose's SDK.
package engine

import "github.com/moby/moby/client"

// Engine is the Docker API a command talks to; the functions here use only the calls they
// name in their small interfaces where they can.
type Engine = client.APIClient
