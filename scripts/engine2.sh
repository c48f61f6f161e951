#!/usr/bin/env bash
# A second Docker engine on this machine, standing in for another host (the e2e tests of
# migrate and scripts/bench.sh --migrate use it).
#
#   scripts/engine2.sh start [--prefix P] [--private DIR]... [--dockerd PATH] [--path-prefix DIR]
#                            [--daemon-json FILE] [--storage-driver D]
#   scripts/engine2.sh stop ENGINE2_DIR
#
# start prints, on stdout, lines a shell can eval and a program can split at the first "=":
#   ENGINE2_DIR=/tmp/P1a2b3c4d                   its folder; give it to stop
#   ENGINE2_HOST=unix:///tmp/P1a2b3c4d/docker.sock
#   ENGINE2_CONTEXT=P1a2b3c4d                    a docker context in $DOCKER_CONFIG (or ~/.docker)
# The engine runs in its own network namespace (its own docker0, networks and published ports,
# so one compose file runs on both engines without clashes), with its own data and exec roots,
# the first engine's storage driver and an empty daemon config. It sees the host's folders, so a
# bind mount on it is the same folder as on the first engine; --private DIR gives it a folder of
# its own at DIR instead (an empty one, kept at ENGINE2_DIR/private/DIR on the host; several
# allowed), the way a real second host would have its own project folder.
#
# Another engine than the installed one (scripts/engine29.sh uses these):
#   --dockerd PATH        the dockerd to run (default: dockerd in PATH)
#   --path-prefix DIR     put DIR first in dockerd's PATH, so the containerd, shim, runc and
#                         docker-proxy it starts are the ones in DIR
#   --daemon-json FILE    the engine's daemon config instead of an empty one (a copy is used);
#                         when it sets "storage-driver", the first engine's is not passed
#   --storage-driver D    this driver instead of the first engine's (a 20.10 engine beside an
#                         Engine 29 on the containerd image store, which reports a snapshotter)
# start waits until the engine answers, or stops everything it made and fails.
#
# stop removes everything start made, each step whatever the others did: the engine's
# containers, dockerd and its containerd and shims, mounts left under the folder, the network
# namespace, the folder and the context. Stopping twice, or an engine half started, is fine.
#
# Needs root, ip, nsenter, dockerd, the docker CLI and a first engine that answers (unshare too
# with --private). Without them it refuses, it never starts half an engine.
set -euo pipefail

log() { printf 'engine2: %s\n' "$*" >&2; }
die() {
	log "error: $*"
	exit 1
}
usage() { sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed '$d; s/^# \{0,1\}//'; }

need() {
	local tool
	[ "$(id -u)" = 0 ] || die "a second engine needs root (network namespaces, dockerd)"
	for tool in "$@"; do
		command -v "$tool" >/dev/null 2>&1 || die "a second engine needs $tool in PATH"
	done
}

# --- start -------------------------------------------------------------------------------------

start() {
	local prefix=eb-eng2- private=() dir id driver="" host t0 pid i out
	local dockerd_bin=dockerd path_prefix="" daemon_json="" driver_flag=()
	while [ $# -gt 0 ]; do
		case "$1" in
		--prefix) [ $# -ge 2 ] || die "--prefix needs a value"; prefix="$2"; shift ;;
		--private)
			[ $# -ge 2 ] || die "--private needs a folder"
			case "$2" in /*) ;; *) die "--private needs an absolute path, not '$2'" ;; esac
			private+=("${2%/}")
			shift
			;;
		--dockerd) [ $# -ge 2 ] || die "--dockerd needs a path"; dockerd_bin="$2"; shift ;;
		--path-prefix)
			[ $# -ge 2 ] && [ -d "$2" ] || die "--path-prefix needs a folder that exists"
			path_prefix="$(cd "$2" && pwd)"
			shift
			;;
		--daemon-json)
			[ $# -ge 2 ] && [ -f "$2" ] || die "--daemon-json needs a file that exists"
			daemon_json="$2"
			shift
			;;
		--storage-driver) [ $# -ge 2 ] || die "--storage-driver needs a value"; driver="$2"; shift ;;
		*) usage >&2; die "unknown argument to start: $1" ;;
		esac
		shift
	done
	[[ "$prefix" =~ ^[a-z][a-z0-9-]{0,15}$ ]] || die "--prefix: lower-case letters, digits and '-', at most 16, not '$prefix'"
	need ip nsenter docker
	local dpath="${path_prefix:+$path_prefix:}$PATH"
	dockerd_bin="$(PATH="$dpath" command -v "$dockerd_bin")" || die "no dockerd at '$dockerd_bin' (nor in ${path_prefix:+$path_prefix or }PATH)"
	[ ${#private[@]} -eq 0 ] || need unshare mount
	for i in "${private[@]}"; do
		[ -d "$i" ] || die "--private $i: no such folder (it must exist to be covered)"
	done
	if [ -n "$daemon_json" ] && grep -q '"storage-driver"' "$daemon_json"; then
		driver="(from $daemon_json)"
	else
		if [ -z "$driver" ]; then
			driver="$(docker info --format '{{.Driver}}' 2>/dev/null)" && [ -n "$driver" ] ||
				die "reading the first engine's storage driver: no engine answers \`docker info\`"
		fi
		driver_flag=(--storage-driver "$driver")
	fi

	t0=$EPOCHREALTIME
	id="$prefix$(od -An -N4 -tx1 /dev/urandom | tr -d ' \n')"
	# Short: the socket's path must stay under the 108 bytes of a unix address.
	dir="${TMPDIR:-/tmp}/$id"
	host="unix://$dir/docker.sock"
	[ ${#host} -lt 100 ] || die "the socket path $dir/docker.sock is too long for a unix address; set TMPDIR to a shorter folder"
	# 0711: a user in the docker group reaches the socket (root:docker 0660) as on a real host;
	# listing the folder stays root's.
	mkdir -m 711 "$dir" || die "creating $dir"
	# From here on, a failure stops what was made.
	trap 'rc=$?; [ $rc -eq 0 ] || { log "start failed; cleaning up"; stop "$dir" >&2 || true; }; exit $rc' EXIT
	trap 'exit 130' INT
	trap 'exit 143' TERM
	printf 'docker_config=%s\n' "${DOCKER_CONFIG:-}" >"$dir/state"

	ip netns add "$id"
	ip netns exec "$id" ip link set lo up
	# An empty config file: the machine's /etc/docker/daemon.json names the first engine's
	# data-root, and dockerd refuses a flag that the file sets too.
	if [ -n "$daemon_json" ]; then
		cp "$daemon_json" "$dir/daemon.json"
	else
		echo '{}' >"$dir/daemon.json"
	fi
	# env: the PATH prefix reaches dockerd and, through it, its containerd, shims and runc.
	local dockerd=(env "PATH=$dpath" "$dockerd_bin" --config-file "$dir/daemon.json" -H "$host"
		--data-root "$dir/data" --exec-root "$dir/exec" --pidfile "$dir/docker.pid"
		--containerd-namespace "$id" --containerd-plugins-namespace "$id-plugins"
		${driver_flag[@]+"${driver_flag[@]}"})
	# nsenter, not `ip netns exec`: that remounts /sys, and dockerd then stops with "Devices
	# cgroup isn't mounted". Every step execs the next, so $! is dockerd's own pid.
	if [ ${#private[@]} -eq 0 ]; then
		setsid nsenter --net="/var/run/netns/$id" "${dockerd[@]}" </dev/null >"$dir/dockerd.log" 2>&1 &
	else
		# A mount namespace of its own, private so nothing leaks back to the host: the covering
		# bind mounts and everything dockerd mounts vanish with its last process.
		for i in "${private[@]}"; do mkdir -p "$dir/private$i"; done
		setsid nsenter --net="/var/run/netns/$id" unshare --mount --propagation private \
			bash -c 'set -e; root=$1; shift; while [ "$1" != -- ]; do mount --bind "$root$1" "$1"; shift; done; shift; exec "$@"' \
			bash "$dir/private" "${private[@]}" -- "${dockerd[@]}" </dev/null >"$dir/dockerd.log" 2>&1 &
	fi
	pid=$!
	printf 'pid=%s\n' "$pid" >>"$dir/state"
	wait_up "$pid" "$host" "$dir"
	# dockerd's own word, should setsid have had to fork.
	pid="$(cat "$dir/docker.pid" 2>/dev/null || echo "$pid")"
	printf 'pid=%s\n' "$pid" >>"$dir/state"

	out="$(DOCKER_HOST= DOCKER_CONTEXT= docker context create "$id" --description "echo-backup second engine ($dir)" \
		--docker "host=$host" 2>&1)" || die "creating docker context $id: $out"
	log "second engine $id ($("$dockerd_bin" --version 2>/dev/null | head -n 1), storage $driver) up in $(awk -v a="$t0" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.1f", b - a }')s"
	printf 'ENGINE2_DIR=%s\nENGINE2_HOST=%s\nENGINE2_CONTEXT=%s\n' "$dir" "$host" "$id"
	trap - EXIT INT TERM
}

wait_up() {
	local pid="$1" host="$2" dir="$3" i
	for ((i = 0; i < 300; i++)); do
		if ! kill -0 "$pid" 2>/dev/null; then
			tail -n 30 "$dir/dockerd.log" >&2 || true
			die "the second dockerd exited (log above, from $dir/dockerd.log)"
		fi
		[ -z "$(docker -H "$host" version --format '{{.Server.Version}}' 2>/dev/null)" ] || return 0
		sleep 0.2
	done
	tail -n 30 "$dir/dockerd.log" >&2 || true
	die "the second dockerd did not answer within a minute"
}

# --- stop --------------------------------------------------------------------------------------

stop() {
	local dir="${1%/}" id host pid="" docker_config ids p i
	case "$dir" in
	/*) ;;
	*) die "stop needs the ENGINE2_DIR that start printed, not '$dir'" ;;
	esac
	id="$(basename "$dir")"
	[[ "$id" =~ ^[a-z][a-z0-9-]*[0-9a-f]{8}$ ]] || die "$dir is not a folder engine2.sh start made"
	need ip docker
	host="unix://$dir/docker.sock"
	docker_config="${DOCKER_CONFIG:-}"
	if [ -f "$dir/state" ]; then
		docker_config="$(sed -n 's/^docker_config=//p' "$dir/state")"
		pid="$(sed -n 's/^pid=//p' "$dir/state" | tail -n 1)"
	fi

	DOCKER_CONFIG="$docker_config" DOCKER_HOST= DOCKER_CONTEXT= docker context rm -f "$id" >/dev/null 2>&1 || true
	if [ -S "$dir/docker.sock" ]; then
		# Containers first, quickly: dockerd would otherwise wait out each one's stop timeout.
		ids="$(docker -H "$host" ps -aq 2>/dev/null || true)"
		[ -z "$ids" ] || docker -H "$host" rm -f -v $ids >/dev/null 2>&1 || log "removing the second engine's containers failed"
	fi
	if [ -n "$pid" ] && is_ours "$pid" "$dir"; then
		kill -TERM "$pid" 2>/dev/null || true
		for ((i = 0; i < 600; i++)); do
			is_ours "$pid" "$dir" || break
			sleep 0.1
		done
		if is_ours "$pid" "$dir"; then
			log "dockerd ignored SIGTERM for a minute; killing it"
			kill -KILL "$pid" 2>/dev/null || true
		fi
	fi
	# What a killed dockerd leaves behind: its containerd, shims, fuse-overlayfs; all of them
	# name this engine's folder on their command line.
	for p in $(leftovers "$dir"); do
		log "killing leftover process $p: $({ tr '\0' ' ' <"/proc/$p/cmdline"; } 2>/dev/null | cut -c1-120)"
		kill -KILL "$p" 2>/dev/null || true
	done
	for ((i = 0; i < 50; i++)); do
		[ -n "$(leftovers "$dir")" ] || break
		sleep 0.1
	done
	# Deepest first; lazily, so one that is still busy cannot keep the rest.
	awk -v d="$dir/" 'index($2, d) == 1 { print length($2), $2 }' /proc/self/mounts | sort -rn | cut -d' ' -f2- |
		while read -r p; do
			umount -l "$p" 2>/dev/null || log "unmounting $p failed"
		done
	if [ -e "/var/run/netns/$id" ]; then
		ip netns del "$id" || log "deleting network namespace $id failed"
	fi
	if [ -d "$dir" ]; then
		# --one-file-system: never into a mount that survived the steps above.
		rm -rf --one-file-system "$dir" || log "removing $dir failed"
	fi
	[ ! -e "$dir" ] || die "$dir is still there"
	log "second engine $id stopped and removed"
}

# is_ours PID DIR: PID is a live process whose command line names DIR (a pid is reused).
is_ours() {
	local c
	c="$({ tr '\0' ' ' <"/proc/$1/cmdline"; } 2>/dev/null)" && [[ "$c" == *"$2/"* ]]
}

# leftovers DIR: the processes of this engine still alive: those naming DIR on their command line,
# and, should the shims be gone, the containers' own processes, found by their cgroup.
leftovers() {
	local p c id ids=()
	for c in "$1"/data/containers/*/; do
		[ -d "$c" ] && ids+=("$(basename "$c")")
	done
	for p in /proc/[0-9]*; do
		p="${p#/proc/}"
		[ "$p" != $$ ] && [ "$p" != "$BASHPID" ] || continue
		if is_ours "$p" "$1"; then
			echo "$p"
			continue
		fi
		[ ${#ids[@]} -gt 0 ] || continue
		c="$({ cat "/proc/$p/cgroup"; } 2>/dev/null)" || continue
		for id in "${ids[@]}"; do
			[[ "$c" != *"$id"* ]] || { echo "$p"; break; }
		done
	done
	return 0
}

case "${1:-}" in
start) shift; start "$@" ;;
stop)
	[ $# -eq 2 ] || die "usage: $0 stop ENGINE2_DIR"
	stop "$2"
	;;
-h | --help) usage ;;
*) usage >&2; exit 2 ;;
esac
