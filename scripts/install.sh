#!/usr/bin/env bash
# Build docker-echobackup from this checkout and install it as a Docker CLI plugin, so
# `docker echobackup ...` works:
#
#   scripts/install.sh
#
# It goes where the docker CLI looks for a user's plugins:
#   ${DOCKER_CONFIG:-$HOME/.docker}/cli-plugins/docker-echobackup
# Running it again rebuilds and replaces the plugin (idempotent). Needs: go, docker CLI.
# No Docker engine is needed to install; one is needed to use the plugin.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"

log() { printf 'install: %s\n' "$*" >&2; }

if ! command -v go >/dev/null 2>&1; then
	log "error: no go in PATH: building the plugin needs Go (see go.mod for the version)."
	exit 1
fi
if ! command -v docker >/dev/null 2>&1; then
	log "error: no docker CLI in PATH: the plugin runs inside it (apt-get install docker.io, or docker-ce-cli)."
	exit 1
fi

version="$(git describe --always --dirty 2>/dev/null || echo dev)"
plugins="${DOCKER_CONFIG:-$HOME/.docker}/cli-plugins"
dest="$plugins/docker-echobackup"

mkdir -p "$plugins"
# Build next to the destination and rename over it: a `docker echobackup` running right now
# keeps its old binary, and a failed build leaves the installed plugin untouched.
tmp="$(mktemp "$plugins/.docker-echobackup.XXXXXX.partial")"
trap 'rm -f "$tmp"' EXIT

log "building docker-echobackup $version ($(go version | awk '{print $3}'))"
go build -trimpath \
	-ldflags "-X github.com/echo-backup/echo-backup/version.Version=$version" \
	-o "$tmp" .
chmod 0755 "$tmp"
mv -f "$tmp" "$dest"
log "installed $dest"

# Show the plugin as the docker CLI sees it. The plugin has no `version` subcommand; the
# CLI reads its metadata and lists it under Client > Plugins in `docker info`. Only the
# client part is formatted, so this works without an engine too.
line="$(docker info --format '{{range .ClientInfo.Plugins}}{{if eq .Name "echobackup"}}{{.Name}}: {{.ShortDescription}} (Version: {{.Version}}, {{.Path}}){{if .Err}} ERROR: {{.Err}}{{end}}{{end}}{{end}}' 2>/dev/null || true)"
if [ -z "$line" ]; then
	log "error: the docker CLI does not list the plugin; is $plugins where it looks? (DOCKER_CONFIG=${DOCKER_CONFIG:-unset})"
	exit 1
fi
echo "docker info: $line"
case "$line" in
*ERROR:*) exit 1 ;;
esac
