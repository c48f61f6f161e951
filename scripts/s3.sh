#!/usr/bin/env bash
# A real S3 server for tests: versitygw (Apache-2.0) serving a folder, on 127.0.0.1.
#
#   scripts/s3.sh build       build versitygw once into the e2e cache; prints the binary's path
#   scripts/s3.sh start DIR   start it on a free port with random keys, serving DIR/data (each
#                             bucket is a folder there: mkdir DIR/data/BUCKET makes one); waits
#                             until it answers, then writes DIR/env and DIR/pid
#   scripts/s3.sh stop DIR    stop the server of DIR (by DIR/pid) and wait for it; fine twice
#
# DIR/env holds lines a shell can source and a program can split at the first "=":
#   AWS_ENDPOINT_URL=http://127.0.0.1:PORT
#   AWS_ACCESS_KEY_ID=…  AWS_SECRET_ACCESS_KEY=…  (random, mode 0600)
#   AWS_REGION=us-east-1
# The binary: $ECHOBACKUP_VERSITYGW if set, else
# ${ECHOBACKUP_E2E_CACHE:-$HOME/.cache/echobackup-e2e}/versitygw-v1.8.0/versitygw (build makes it:
# go install from the Go module proxy, about 2 minutes cold). The server's log is DIR/log.
# Needs go (build), python3 (a free port) and curl (readiness).
set -euo pipefail

version=v1.8.0

log() { printf 's3: %s\n' "$*" >&2; }
die() {
	log "error: $*"
	exit 1
}
usage() { sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed '$d; s/^# \{0,1\}//'; }

cache_bin() {
	printf '%s/versitygw-%s/versitygw\n' "${ECHOBACKUP_E2E_CACHE:-$HOME/.cache/echobackup-e2e}" "$version"
}

binary() { printf '%s\n' "${ECHOBACKUP_VERSITYGW:-$(cache_bin)}"; }

build() {
	local bin dir t0=$SECONDS
	bin="$(binary)"
	if [ -x "$bin" ]; then
		printf '%s\n' "$bin"
		return
	fi
	bin="$(cache_bin)"
	dir="$(dirname "$bin")"
	command -v go >/dev/null 2>&1 || die "building versitygw needs go in PATH"
	mkdir -p "$dir"
	log "building versitygw $version into $dir (about 2 minutes the first time)"
	# A temporary GOBIN: a failed build leaves no half binary at the cached path.
	rm -rf "$dir/tmp"
	mkdir -p "$dir/tmp"
	GOBIN="$dir/tmp" CGO_ENABLED=0 go install "github.com/versity/versitygw/cmd/versitygw@$version" >&2 ||
		die "go install github.com/versity/versitygw/cmd/versitygw@$version failed"
	mv "$dir/tmp/versitygw" "$bin"
	rmdir "$dir/tmp"
	log "built $bin in $((SECONDS - t0))s"
	printf '%s\n' "$bin"
}

free_port() {
	python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()'
}

random_key() { head -c "$1" /dev/urandom | od -An -tx1 | tr -d ' \n'; }

start() {
	local dir="${1:-}" bin port access secret pid i
	[ -n "$dir" ] || die "start needs a folder: scripts/s3.sh start DIR"
	bin="$(binary)"
	[ -x "$bin" ] || die "no versitygw at $bin: run scripts/s3.sh build first"
	command -v curl >/dev/null 2>&1 || die "start needs curl in PATH"
	mkdir -p "$dir/data"
	dir="$(cd "$dir" && pwd)"
	if [ -f "$dir/pid" ] && kill -0 "$(cat "$dir/pid")" 2>/dev/null; then
		die "a server already runs for $dir (pid $(cat "$dir/pid")): scripts/s3.sh stop $dir"
	fi
	access="$(random_key 10)"
	secret="$(random_key 20)"
	for i in 1 2 3; do
		port="$(free_port)"
		ROOT_ACCESS_KEY="$access" ROOT_SECRET_KEY="$secret" \
			setsid "$bin" --port "127.0.0.1:$port" posix "$dir/data" >"$dir/log" 2>&1 </dev/null &
		pid=$!
		# Ready when it answers HTTP at all (an unsigned request gets 403).
		for _ in $(seq 1 100); do
			if curl -s -o /dev/null "http://127.0.0.1:$port/"; then
				break
			fi
			kill -0 "$pid" 2>/dev/null || break
			sleep 0.1
		done
		if kill -0 "$pid" 2>/dev/null && curl -s -o /dev/null "http://127.0.0.1:$port/"; then
			(
				umask 077
				printf 'AWS_ENDPOINT_URL=http://127.0.0.1:%s\nAWS_ACCESS_KEY_ID=%s\nAWS_SECRET_ACCESS_KEY=%s\nAWS_REGION=us-east-1\n' \
					"$port" "$access" "$secret" >"$dir/env"
			)
			printf '%s\n' "$pid" >"$dir/pid"
			log "versitygw pid $pid on 127.0.0.1:$port serving $dir/data"
			return
		fi
		# Lost the port to someone else, or it died: try another port.
		kill "$pid" 2>/dev/null || true
		wait "$pid" 2>/dev/null || true
		log "versitygw did not answer on port $port (attempt $i): $(tail -n 3 "$dir/log" | tr '\n' ' ')"
	done
	die "versitygw did not start: see $dir/log"
}

stop() {
	local dir="${1:-}" pid
	[ -n "$dir" ] || die "stop needs a folder: scripts/s3.sh stop DIR"
	[ -f "$dir/pid" ] || return 0
	pid="$(cat "$dir/pid")"
	if kill "$pid" 2>/dev/null; then
		for _ in $(seq 1 50); do
			kill -0 "$pid" 2>/dev/null || break
			sleep 0.1
		done
		kill -9 "$pid" 2>/dev/null || true
	fi
	rm -f "$dir/pid"
}

case "${1:-}" in
build) build ;;
start) start "${2:-}" ;;
stop) stop "${2:-}" ;;
-h | --help | help) usage ;;
*)
	usage >&2
	exit 2
	;;
esac
