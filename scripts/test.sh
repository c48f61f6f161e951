#!/usr/bin/env bash
# The project's test command (see README): static checks, unit tests, then the
# end-to-end suite against a real Docker engine. Fails -- never skips -- when no
# engine can be had. Needs: go, docker CLI, a Docker engine (or dockerd + root).
#
#   scripts/test.sh                      everything
#   E2E_RUN='TestSmoke' scripts/test.sh  pass -run to the e2e suite
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

step "e2e tests: go test -tags e2e -count=1 -v -timeout 60m ./e2e/..."
log="$(mktemp "${TMPDIR:-/tmp}/echobackup-e2e.XXXXXX.log")"
run_args=()
if [ -n "${E2E_RUN:-}" ]; then
	run_args=(-run "$E2E_RUN")
fi
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

echo
echo "e2e summary: $total tests ran (incl. subtests): $passed passed, $failed failed, $skipped skipped" \
	"| top-level: $top_passed passed, $top_failed failed, $top_skipped skipped | go test exit $rc | log: $log"

if [ "$rc" -ne 0 ]; then
	echo "FAIL: e2e tests failed (go test exit $rc)" >&2
	exit "$rc"
fi
if [ "$total" -eq 0 ]; then
	echo "FAIL: no e2e test ran" >&2
	exit 1
fi
if [ "$skipped" -ne 0 ]; then
	echo "FAIL: $skipped e2e tests were skipped; the e2e suite must run in full:" >&2
	grep -E "^[[:space:]]*--- SKIP: " "$log" >&2
	exit 1
fi
echo "OK: all checks passed"
