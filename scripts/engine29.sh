#!/usr/bin/env bash
# Docker Engine 29 for the tests, the engine most self-hosters run: dockerd 29.8.1 on the
# containerd image store, with its own containerd v2, runc 1.5 and a v29 docker CLI, all built
# from source through the Go module proxy, once, and cached outside the checkout.
#
#   scripts/engine29.sh build               build what the cache lacks; print where it is
#   scripts/engine29.sh start [OPTIONS]     build if needed, then start it as scripts/engine2.sh
#                                           starts a second engine (same OPTIONS, same output)
#   scripts/engine29.sh stop ENGINE2_DIR    scripts/engine2.sh stop
#
# build prints, on stdout, lines a shell can eval:
#   ENGINE29_BIN=DIR          dockerd, docker-proxy, containerd, containerd-shim-runc-v2, runc
#   ENGINE29_CLI=DIR          docker: the v29 CLI at the github.com/docker/cli version in go.mod
#   ENGINE29_DAEMON_JSON=FILE its daemon config: containerd image store, overlayfs snapshotter,
#                             its own docker-proxy
# The CLI sits apart from the engine so a PATH prefixed with ENGINE29_CLI still runs the
# installed dockerd (the migrate tests start a second, installed, engine beside it).
#
# The cache: $ECHOBACKUP_E2E_CACHE, else ~/.cache/echobackup-e2e (as the e2e suite's compose
# CLI). A cold build takes about 10 minutes on 2 cores and fills Go's module and build caches
# with about 3 GB; the binaries take about 250 MB. ECHOBACKUP_BUILD_P sets go build -p (default:
# Go's own, the number of CPUs). Needs go, a C compiler and libseccomp-dev (runc's seccomp;
# installed with apt-get when missing and root); network only to the Go module proxy.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"

# The versions: moby's v2 module tags carry the engine; its own version string must be set.
ENGINE_VERSION=29.8.1
MOBY=github.com/moby/moby/v2
MOBY_VERSION=v2.0.0-beta.24
CONTAINERD=github.com/containerd/containerd/v2
CONTAINERD_VERSION=v2.4.2
RUNC=github.com/opencontainers/runc
RUNC_VERSION=v1.5.3
CLI=github.com/docker/cli

log() { printf 'engine29: %s\n' "$*" >&2; }
die() {
	log "error: $*"
	exit 1
}
usage() { sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed '$d; s/^# \{0,1\}//'; }

cache_dir() {
	local dir="${ECHOBACKUP_E2E_CACHE:-}"
	if [ -z "$dir" ]; then
		dir="${XDG_CACHE_HOME:-${HOME:?}/.cache}/echobackup-e2e"
	fi
	mkdir -p "$dir" && (cd "$dir" && pwd)
}

# timed NAME CMD...: runs CMD, logs its wall time and the peak memory of its largest process.
timed() {
	local name="$1" t0 rss=""
	shift
	t0=$EPOCHREALTIME
	if [ -x /usr/bin/time ]; then
		/usr/bin/time -f '%M' -o "$work/rss" "$@" || die "building $name failed"
		rss="$(tail -n 1 "$work/rss")"
		rss=", peak $((rss / 1024)) MB"
	else
		"$@" || die "building $name failed"
	fi
	log "built $name in $(awk -v a="$t0" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.0f", b - a }')s$rss"
}

need_libseccomp() {
	[ -e /usr/include/seccomp.h ] && return 0
	if [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null 2>&1; then
		log "no seccomp.h: installing Debian's libseccomp-dev (runc is built against it)"
		install_it() { DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends libseccomp-dev >/dev/null; }
		install_it || { apt-get update >/dev/null && install_it; } || die "installing libseccomp-dev with apt-get failed"
		return 0
	fi
	die "runc needs libseccomp's headers: install libseccomp-dev (Debian, Ubuntu) and re-run"
}

# add_cli_requirements MODDIR VENDOR_MOD: requires, in MODDIR's go.mod, each module of VENDOR_MOD
# that MODDIR's module graph lacks (what is there already stays at its version).
add_cli_requirements() {
	local dir="$1" vendor="$2" have m v args=()
	[ -f "$vendor" ] || die "no $vendor in the $CLI module"
	have="$(cd "$dir" && go list -m -f '{{.Path}}' all)" || die "listing the module graph in $dir"
	while read -r m v; do
		grep -qxF "$m" <<<"$have" || args+=("-require=$m@$v")
	done < <(awk '/^require[[:space:]]*\($/ { in_req = 1; next } in_req && /^\)/ { in_req = 0 }
		in_req && NF >= 2 && $1 !~ /^\/\// { print $1, $2 }' "$vendor")
	[ ${#args[@]} -eq 0 ] || (cd "$dir" && go mod edit "${args[@]}")
}

build() {
	local cache cli_version engine cli p=() t0
	command -v go >/dev/null 2>&1 || die "building Engine 29 needs go in PATH"
	cache="$(cache_dir)" || die "cannot make the cache folder"
	cli_version="$(cd "$root" && go list -m -f '{{.Version}}' "$CLI")" || die "reading the $CLI version from go.mod"
	engine="$cache/engine-$ENGINE_VERSION-containerd-$CONTAINERD_VERSION-runc-$RUNC_VERSION-$(go env GOOS)-$(go env GOARCH)"
	cli="$cache/docker-cli-$cli_version-$(go env GOOS)-$(go env GOARCH)"
	[ -z "${ECHOBACKUP_BUILD_P:-}" ] || p=(-p "$ECHOBACKUP_BUILD_P")

	if [ ! -x "$engine/runc" ] || [ ! -x "$cli/docker" ]; then
		t0=$EPOCHREALTIME
		work="$(mktemp -d "${TMPDIR:-/tmp}/echobackup-engine29.XXXXXX")"
		trap 'rm -rf "$work"' EXIT
		# go install MODULE@VERSION builds outside any module: this checkout's go.mod is not
		# touched, and nothing of it lands here but the binaries.
		export GOFLAGS=-buildvcs=false
		if [ ! -x "$engine/runc" ]; then
			need_libseccomp
			log "building Engine $ENGINE_VERSION, containerd $CONTAINERD_VERSION and runc $RUNC_VERSION into $engine (once; about 10 minutes cold)"
			mkdir -p "$work/engine"
			(cd "$work" && timed "dockerd $ENGINE_VERSION and docker-proxy ($MOBY@$MOBY_VERSION)" \
				env GOBIN="$work/engine" CGO_ENABLED=0 go install ${p[@]+"${p[@]}"} \
				-tags 'netgo osusergo static_build nri_no_wasm exclude_graphdriver_btrfs' \
				-ldflags "-X $MOBY/dockerversion.Version=$ENGINE_VERSION" \
				"$MOBY/cmd/dockerd@$MOBY_VERSION" "$MOBY/cmd/docker-proxy@$MOBY_VERSION")
			(cd "$work" && timed "containerd and containerd-shim-runc-v2 $CONTAINERD_VERSION" \
				env GOBIN="$work/engine" CGO_ENABLED=0 go install ${p[@]+"${p[@]}"} \
				-tags 'no_btrfs netgo osusergo static_build' \
				-ldflags "-X $CONTAINERD/version.Version=$CONTAINERD_VERSION" \
				"$CONTAINERD/cmd/containerd@$CONTAINERD_VERSION" "$CONTAINERD/cmd/containerd-shim-runc-v2@$CONTAINERD_VERSION")
			# runc: cgo against libseccomp, as distributions build it (seccomp profiles need it).
			(cd "$work" && timed "runc $RUNC_VERSION" \
				env GOBIN="$work/engine" CGO_ENABLED=1 go install ${p[@]+"${p[@]}"} -tags seccomp \
				-ldflags "-X main.version=${RUNC_VERSION#v}" "$RUNC@$RUNC_VERSION")
			rm -rf "$engine.partial" && mv "$work/engine" "$engine.partial"
			rm -rf "$engine" && mv "$engine.partial" "$engine"
		fi
		if [ ! -x "$cli/docker" ]; then
			# docker/cli has no go.mod (+incompatible): build cmd/docker with the dependency
			# versions this project's go.mod pins, in a copy of it that may grow go.sum lines.
			mkdir -p "$work/mod" "$work/cli"
			cp "$root/go.mod" "$root/go.sum" "$work/mod/"
			# What cmd/docker needs beyond that graph at the versions docker/cli's own vendor.mod
			# names: the proxy lists no versions of some (go-rosetta), so they cannot be looked up.
			add_cli_requirements "$work/mod" "$(cd "$work/mod" && go list -m -f '{{.Dir}}' "$CLI")/vendor.mod"
			# cmd/docker's own files, copied into that module: built as part of a module without
			# a go.mod they would get Go 1.16's language and not compile.
			# Its internal packages come along, their imports renamed.
			mkdir -p "$work/mod/cmd"
			cp -r "$(cd "$work/mod" && go list -m -f '{{.Dir}}' "$CLI")/cmd/docker" "$work/mod/cmd/"
			chmod -R u+w "$work/mod/cmd"
			find "$work/mod/cmd" -name '*_test.go' -delete
			find "$work/mod/cmd" -name '*.go' -exec sed -i \
				"s#\"$CLI/cmd/docker/#\"$(cd "$root" && go list -m)/cmd/docker/#" {} +
			(cd "$work/mod" && timed "docker CLI $cli_version" \
				env CGO_ENABLED=0 GOFLAGS="-mod=mod -buildvcs=false" go build ${p[@]+"${p[@]}"} \
				-ldflags "-X $CLI/cli/version.Version=$(v="${cli_version#v}"; echo "${v%+incompatible}") -X $CLI/cli/version.PlatformName=echo-backup-tests" \
				-o "$work/cli/docker" ./cmd/docker)
			rm -rf "$cli.partial" && mv "$work/cli" "$cli.partial"
			rm -rf "$cli" && mv "$cli.partial" "$cli"
		fi
		log "Engine 29 build done in $(awk -v a="$t0" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.0f", b - a }')s; cache $(du -sh "$engine" "$cli" | awk '{ printf "%s %s; ", $1, $2 }')"
	else
		log "Engine $ENGINE_VERSION and the docker CLI $cli_version from cache $cache"
	fi
	# Rewritten every time: it names the docker-proxy by absolute path (Debian's 20.10
	# docker-proxy lacks the -use-listen-fd flag Engine 29 passes).
	cat >"$engine/daemon.json.partial" <<-EOF
		{
		  "features": {"containerd-snapshotter": true},
		  "storage-driver": "overlayfs",
		  "userland-proxy-path": "$engine/docker-proxy"
		}
	EOF
	mv "$engine/daemon.json.partial" "$engine/daemon.json"
	printf 'ENGINE29_BIN=%s\nENGINE29_CLI=%s\nENGINE29_DAEMON_JSON=%s\n' "$engine" "$cli" "$engine/daemon.json"
}

case "${1:-}" in
build) build ;;
start)
	shift
	eval "$(build)"
	exec "$root/scripts/engine2.sh" start --dockerd "$ENGINE29_BIN/dockerd" --path-prefix "$ENGINE29_BIN" \
		--daemon-json "$ENGINE29_DAEMON_JSON" "$@"
	;;
stop)
	[ $# -eq 2 ] || die "usage: $0 stop ENGINE2_DIR"
	exec "$root/scripts/engine2.sh" stop "$2"
	;;
-h | --help) usage ;;
*) usage >&2; exit 2 ;;
esac
