#!/usr/bin/env bash
# The project's test command (see README): static checks, unit tests, then the
# end-to-end suite against a real Docker engine, twice: on the main engine with the installed
# CLI, then on an Engine 29 (containerd image store, containerd v2, runc 1.5) with a v29 CLI,
# built once by scripts/engine29.sh and started as scripts/engine2.sh starts a second engine.
# Fails -- never skips -- when no engine can be had. Needs: go, docker CLI, a Docker engine (or
# dockerd + root), python3 and curl (scripts/s3.sh runs versitygw for the S3 unit tests); for
# Engine 29 also root, ip, nsenter, a C compiler and libseccomp-dev; for the migrate-over-ssh
# tests root, tc and Debian's openssh-server (installed here when missing).
#
#   scripts/test.sh                      everything
#   E2E_RUN='TestSmoke' scripts/test.sh  pass -run to the e2e suite (on each engine)
#   ECHOBACKUP_E2E_ENGINES=main          only the main engine: for a machine that cannot build or
#                                        run Engine 29 (the migrate tests' second engine is then
#                                        the installed dockerd too); "29" runs only Engine 29;
#                                        default "both"
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"

step() { printf '\n==> %s\n' "$*"; }

# CI runs as root without a TTY: keep the tools' output plain.
export NO_COLOR=1 COMPOSE_ANSI=never

step "go version: $(go version)"

step "gofmt"
unformatted="$(find . \( -name .git -o -name vendor -o -name testdata -o -name node_modules \) -prune -o \
	-name '*.go' -type f -print0 | xargs -0 -r gofmt -l)"
if [ -n "$unformatted" ]; then
	echo "these files need gofmt -w:" >&2
	echo "$unformatted" >&2
	exit 1
fi

step "go mod tidy -diff  (go.mod and go.sum say exactly what the code imports)"
if ! tidy="$(go mod tidy -diff 2>&1)"; then
	echo "go.mod or go.sum is not tidy: run go mod tidy and commit the result" >&2
	printf '%s\n' "$tidy" | head -n 40 >&2
	exit 1
fi

step "go vet ./...  (and the e2e package: go vet -tags e2e ./e2e/...)"
go vet ./...
go vet -tags e2e ./e2e/...

step "versitygw, the S3 server of the repository tests (scripts/s3.sh build; cached, about 2 minutes the first time)"
if ! ECHOBACKUP_VERSITYGW="$("$root/scripts/s3.sh" build)"; then
	echo "FAIL: building versitygw failed: the repository package's S3 tests cannot run" >&2
	exit 1
fi
# The S3 tests fail instead of skipping when they cannot run.
export ECHOBACKUP_VERSITYGW ECHOBACKUP_S3_TESTS=1
echo "ECHOBACKUP_VERSITYGW=$ECHOBACKUP_VERSITYGW"

step "unit tests: go test ./..."
go test ./...

step "Docker engine"
# shellcheck source=scripts/engine.sh
. "$root/scripts/engine.sh"

step "PostgreSQL test image"
ECHOBACKUP_PG_IMAGE="$("$root/scripts/pg-image.sh")"
export ECHOBACKUP_PG_IMAGE
echo "ECHOBACKUP_PG_IMAGE=$ECHOBACKUP_PG_IMAGE"

step "cron (the schedule tests install, run and remove a crontab entry)"
if command -v crontab >/dev/null 2>&1; then
	echo "crontab: $(command -v crontab)"
elif [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null 2>&1; then
	echo "no crontab command: installing Debian's cron package"
	install_cron() { DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends cron >/dev/null; }
	if ! install_cron && ! { apt-get update >/dev/null && install_cron; }; then
		echo "WARNING: could not install cron with apt-get: TestScheduleCron will fail." >&2
	fi
else
	echo "WARNING: no crontab command and no root with apt-get to install it: TestScheduleCron will fail." >&2
	echo "Install cron (Debian and Ubuntu: apt-get install cron) and re-run." >&2
fi

step "zsh, fish and sudo (the shell guard tests load the functions in real shells and run sudo)"
missing=()
for pkg in zsh fish sudo; do
	command -v "$pkg" >/dev/null 2>&1 || missing+=("$pkg")
done
if [ "${#missing[@]}" -eq 0 ]; then
	echo "zsh: $(command -v zsh), fish: $(command -v fish), sudo: $(command -v sudo)"
elif [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null 2>&1; then
	echo "missing ${missing[*]}: installing Debian's packages"
	install_shells() { DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "${missing[@]}" >/dev/null; }
	if ! install_shells && ! { apt-get update >/dev/null && install_shells; }; then
		echo "WARNING: could not install ${missing[*]} with apt-get: the shell guard tests will fail." >&2
	fi
else
	echo "WARNING: no ${missing[*]} and no root with apt-get to install them: the shell guard tests will fail." >&2
	echo "Install them (Debian and Ubuntu: apt-get install ${missing[*]}) and re-run." >&2
fi

step "openssh-server (the migrate-over-ssh tests run Debian's sshd in front of a second engine: scripts/sshd.sh)"
if ! "$root/scripts/sshd.sh" install; then
	echo "WARNING: no sshd and it could not be installed: the TestMigrateSSH tests will fail." >&2
	echo "Install it (Debian and Ubuntu: apt-get install openssh-server) and re-run, as root." >&2
fi

engines="${ECHOBACKUP_E2E_ENGINES:-both}"
case "$engines" in
both | main | 29) ;;
*) echo "ECHOBACKUP_E2E_ENGINES must be both, main or 29, not '$engines'" >&2; exit 2 ;;
esac

if [ "$engines" != main ]; then
	step "Engine 29 and a v29 docker CLI (scripts/engine29.sh build; cached, about 10 minutes the first time)"
	if ! e29="$("$root/scripts/engine29.sh" build)"; then
		echo "FAIL: building Engine 29 failed; ECHOBACKUP_E2E_ENGINES=main runs the main engine's suite alone" >&2
		exit 1
	fi
	eval "$e29"
	echo "$e29"
fi

run_args=()
if [ -n "${E2E_RUN:-}" ]; then
	run_args=(-run "$E2E_RUN")
fi
summaries=()
failures=0

# run_e2e LABEL: the whole e2e suite on the engine the environment names; its summary line goes
# into summaries, a failed, empty or skipping run counts in failures.
run_e2e() {
	local label="$1" log rc passed failed skipped top_passed top_failed top_skipped total engine why=""
	engine="$(docker version --format 'engine {{.Server.Version}} (API {{.Server.APIVersion}}), CLI {{.Client.Version}} (API {{.Client.APIVersion}})' 2>&1 | tail -n 1)"
	step "e2e tests on $label: $engine: go test -tags e2e -count=1 -v -timeout 60m ./e2e/..."
	log="$(mktemp "${TMPDIR:-/tmp}/echobackup-e2e.XXXXXX.log")"
	local t0=$SECONDS
	set +e
	go test -tags e2e -count=1 -v -timeout 60m ${run_args[@]+"${run_args[@]}"} ./e2e/... 2>&1 | tee "$log"
	rc=${PIPESTATUS[0]}
	set -e

	# Count results from the verbose log: "--- PASS: Name" lines, top-level tests
	# unindented, subtests indented.
	count() { grep -cE "^[[:space:]]*--- $1: " "$log" || true; }
	count_top() { grep -cE "^--- $1: " "$log" || true; }
	passed=$(count PASS) failed=$(count FAIL) skipped=$(count SKIP)
	top_passed=$(count_top PASS) top_failed=$(count_top FAIL) top_skipped=$(count_top SKIP)
	total=$((passed + failed + skipped))

	if [ "$rc" -ne 0 ]; then
		why="FAIL: go test exit $rc"
	elif [ "$total" -eq 0 ]; then
		why="FAIL: no e2e test ran"
	elif [ "$skipped" -ne 0 ]; then
		why="FAIL: $skipped tests were skipped; the e2e suite must run in full"
		grep -E "^[[:space:]]*--- SKIP: " "$log" >&2
	fi
	[ -z "$why" ] || failures=$((failures + 1))
	summaries+=("e2e on $label, $engine: $total tests ran (incl. subtests): $passed passed, $failed failed, $skipped skipped | top-level: $top_passed passed, $top_failed failed, $top_skipped skipped | $((SECONDS - t0))s | ${why:-OK} | log: $log")
	echo
	echo "${summaries[-1]}"
}

if [ "$engines" != 29 ]; then
	if [ "$engines" = both ]; then
		# The migrate tests' second engine is an Engine 29: migrate from the main engine to 29.
		export ECHOBACKUP_E2E_ENGINE2_ARGS="--dockerd $ENGINE29_BIN/dockerd --path-prefix $ENGINE29_BIN --daemon-json $ENGINE29_DAEMON_JSON"
	fi
	run_e2e "the main engine"
fi

if [ "$engines" != main ]; then
	step "starting Engine 29 (scripts/engine29.sh start)"
	main_driver="$(docker info --format '{{.Driver}}')"
	e29_engine="$("$root/scripts/engine29.sh" start --prefix eb-e29-)" || { echo "FAIL: Engine 29 did not start" >&2; exit 1; }
	eval "$e29_engine"
	e29_dir="$ENGINE2_DIR"
	# shellcheck disable=SC2064 # the folder is known now
	trap "'$root/scripts/engine29.sh' stop '$e29_dir' || true" EXIT
	trap 'exit 130' INT
	trap 'exit 143' TERM
	t0=$SECONDS
	if ! (set -o pipefail; docker save "$ECHOBACKUP_PG_IMAGE" | docker -H "$ENGINE2_HOST" load -q); then
		echo "FAIL: copying $ECHOBACKUP_PG_IMAGE to Engine 29" >&2
		exit 1
	fi
	echo "copied $ECHOBACKUP_PG_IMAGE to Engine 29 in $((SECONDS - t0))s"
	# The v29 CLI first in PATH (dockerd stays the installed one: the migrate tests' second
	# engine is then the main engine's version, so migrate goes from 29 to it); the suite
	# reaches Engine 29 by DOCKER_HOST, which it turns into a docker context of its own.
	(
		export DOCKER_HOST="$ENGINE2_HOST" PATH="$ENGINE29_CLI:$PATH"
		export ECHOBACKUP_E2E_ENGINE2_ARGS="--storage-driver $main_driver"
		failures=0
		run_e2e "Engine 29"
		printf '%s\n' "$failures" "${summaries[-1]}" >"$e29_dir/summary"
	)
	failures=$((failures + $(sed -n 1p "$e29_dir/summary")))
	summaries+=("$(sed -n 2p "$e29_dir/summary")")
	"$root/scripts/engine29.sh" stop "$e29_dir"
	trap - EXIT INT TERM
fi

echo
for line in "${summaries[@]}"; do
	echo "$line"
done
if [ "$failures" -ne 0 ]; then
	echo "FAIL: the e2e suite failed on $failures of ${#summaries[@]} engines" >&2
	exit 1
fi
echo "OK: all checks passed"
