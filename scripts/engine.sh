#!/usr/bin/env bash
# Make sure a Docker engine answers `docker version`.
#
#   scripts/engine.sh            run: exits 0 when an engine answers, non-zero otherwise
#   . scripts/engine.sh          sourced: returns the same status (no exit)
#
# If no engine answers and `dockerd` is installed, it is started in the background
# (log in a temp file) and given up to ECHOBACKUP_ENGINE_WAIT seconds (default 60).
# No API version is pinned: the docker CLI negotiates with whatever engine answers.

_eb_engine_log() { printf 'engine: %s\n' "$*" >&2; }

_eb_engine_version() {
	docker version --format '{{.Server.Version}}' 2>/dev/null
}

ensure_docker_engine() {
	local wait="${ECHOBACKUP_ENGINE_WAIT:-60}" v log pid i

	if ! command -v docker >/dev/null 2>&1; then
		_eb_engine_log "error: no docker CLI in PATH ($PATH)."
		_eb_engine_log "       Install the docker CLI (Debian: apt-get install docker.io, or docker-ce-cli)."
		return 1
	fi

	if v="$(_eb_engine_version)" && [ -n "$v" ]; then
		_eb_engine_log "Docker engine $v answers ($(docker context show 2>/dev/null || echo default) context${DOCKER_HOST:+, DOCKER_HOST=$DOCKER_HOST})"
		return 0
	fi

	_eb_engine_log "no Docker engine answers: $(docker version --format '{{.Server.Version}}' 2>&1 | tail -n 1)"

	if [ -n "${DOCKER_HOST:-}" ]; then
		_eb_engine_log "error: DOCKER_HOST=$DOCKER_HOST is set and does not answer; not starting a local dockerd."
		return 1
	fi
	if ! command -v dockerd >/dev/null 2>&1; then
		_eb_engine_log "error: no dockerd in PATH to start, and no engine answers."
		_eb_engine_log "       Start a Docker engine, point DOCKER_HOST at one, or install dockerd (Debian: apt-get install docker.io)."
		return 1
	fi
	if [ "$(id -u)" != 0 ]; then
		_eb_engine_log "error: dockerd is installed but not running, and starting it needs root (running as uid $(id -u))."
		_eb_engine_log "       Start it yourself, e.g.: sudo systemctl start docker   (or: sudo dockerd &)"
		return 1
	fi

	log="$(mktemp "${TMPDIR:-/tmp}/echobackup-dockerd.XXXXXX.log")"
	_eb_engine_log "starting $(command -v dockerd) in the background (log: $log)"
	# setsid + nohup: the engine outlives this script (and its process group).
	setsid nohup dockerd </dev/null >"$log" 2>&1 &
	pid=$!

	for ((i = 0; i < wait; i++)); do
		if v="$(_eb_engine_version)" && [ -n "$v" ]; then
			_eb_engine_log "Docker engine $v answers after ${i}s (dockerd pid $pid, log $log)"
			return 0
		fi
		if ! kill -0 "$pid" 2>/dev/null; then
			_eb_engine_log "error: dockerd (pid $pid) exited. Last lines of $log:"
			tail -n 30 "$log" >&2
			return 1
		fi
		sleep 1
	done
	_eb_engine_log "error: dockerd (pid $pid) did not answer within ${wait}s. Last lines of $log:"
	tail -n 30 "$log" >&2
	return 1
}

if [ "${BASH_SOURCE[0]}" != "$0" ]; then
	ensure_docker_engine
	return $?
fi
set -uo pipefail
ensure_docker_engine
exit $?
