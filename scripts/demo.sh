#!/usr/bin/env bash
# See echo-backup work, end to end, on a demo Echo deployment:
#
#   scripts/demo.sh [--clean] [FOLDER]
#
# It installs the plugin (scripts/install.sh), starts a demo Echo stack (demo/) in FOLDER
# (default ~/echo-demo), fills it with sample data, saves and verifies a backup, destroys the
# deployment the way accidents do (`docker compose down -v` and `rm -rf data`), restores it
# with `docker echobackup restore latest --yes`, and compares a fingerprint of the database
# and of ./data from before and after: PASS (identical) or FAIL (with the difference, exit 1).
#
# The stack is left running for a look around; --clean removes it at the end instead
# (containers, volumes, network and FOLDER). Running it again refreshes the same demo.
# FOLDER must be new, empty, or an earlier demo folder: anything else is refused.
#
# Needs: the docker CLI, a Docker engine (started here if dockerd is installed and we are
# root), Go (to build the plugin, and the compose CLI if there is none). Run as root or as
# a member of the docker group.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PROJECT=echo-demo                  # `name:` in demo/compose.yaml
MARKER=.echo-demo                  # marks a folder this script made (and may recreate)
DEMO_FILES=(compose.yaml seed.sql .gitignore)
COMPOSE_MODULE=github.com/docker/compose/v5

usage() { sed -n '2,/^set -euo/{/^set -euo/d;s/^# \{0,1\}//;p}' "${BASH_SOURCE[0]}"; }

clean=0
state="" # temporary folder of the fingerprints
made=0 # set once the demo folder is ours (step 5)
work=""
while [ $# -gt 0 ]; do
	case "$1" in
	--clean) clean=1 ;;
	-h | --help) usage; exit 0 ;;
	-*) echo "demo: unknown option $1 (see --help)" >&2; exit 2 ;;
	*)
		[ -z "$work" ] || { echo "demo: one folder only (see --help)" >&2; exit 2; }
		work="$1"
		;;
	esac
	shift
done
work="$(realpath -m "${work:-$HOME/echo-demo}")"
# Refuse a folder that is not ours before doing anything.
if [ -e "$work" ] || [ -L "$work" ]; then
	if [ ! -f "$work/$MARKER" ] && ! { [ -d "$work" ] && [ -z "$(ls -A "$work")" ]; }; then
		echo "demo: $work exists and was not made by this script: not touching it." >&2
		echo "      Pass another folder: scripts/demo.sh FOLDER" >&2
		exit 1
	fi
fi

# The demo works on its own folder and project only: settings meant for the user's other
# compose projects, or another backup folder, must not redirect it.
unset COMPOSE_FILE COMPOSE_PROJECT_NAME COMPOSE_PROFILES COMPOSE_ENV_FILES ECHOBACKUP_DIR

# ---------------------------------------------------------------------------------------
# Output helpers: every step prints one header line, every command it runs is echoed.

t_start=$SECONDS
step_no=0
step() {
	step_no=$((step_no + 1))
	printf '\n==> %d. %s   [%ds]\n' "$step_no" "$*" $((SECONDS - t_start))
}
note() { printf '    %s\n' "$*"; }
die() { printf '\ndemo: error: %s\n' "$*" >&2; exit 1; }
# run CMD...: echo the command as a user would type it, then run it.
run() { printf '$ %s\n' "$*"; "$@"; }

# The build steps (engine, images, plugin, compose CLI) print hundreds of lines (debootstrap,
# apt, `go: downloading …`) that tell nothing of a backup: they go to BUILD_LOG, and each step
# is one line with its time. A failing step shows its part of the log.
BUILD_LOG="$(mktemp "${TMPDIR:-/tmp}/echo-demo-build.XXXXXX.log")"
SUMMARY="" # what a build step found, for its line
# build_step TITLE FUNCTION: one line "==> N. TITLE ... SUMMARY (Ns)"; FUNCTION runs in this
# shell (it may set variables) with all of its output in BUILD_LOG.
build_step() {
	local title=$1 t0=$SECONDS from rc=0
	step_no=$((step_no + 1))
	from=$(($(wc -l <"$BUILD_LOG") + 1))
	printf '==> %d. %s ... ' "$step_no" "$title"
	SUMMARY=""
	printf '\n### %d. %s\n' "$step_no" "$title" >>"$BUILD_LOG"
	# errexit does not hold inside a function run on the left of ||: each one returns on failure itself.
	"$2" >>"$BUILD_LOG" 2>&1 || rc=$?
	if [ "$rc" = 0 ]; then
		printf '%s (%ds)\n' "${SUMMARY:-done}" $((SECONDS - t0))
		return 0
	fi
	printf 'FAILED after %ds (exit %d). Its log (all of it in %s):\n' $((SECONDS - t0)) "$rc" "$BUILD_LOG"
	tail -n +"$from" "$BUILD_LOG" | tail -n 60 | sed 's/^/    | /'
	exit "$rc"
}

# compose ARGS: the compose CLI chosen in step 4 (`docker compose` or a standalone binary).
COMPOSE=()
COMPOSE_SHOWN=""
compose() { "${COMPOSE[@]}" "$@"; }
run_compose() { printf '$ %s %s\n' "$COMPOSE_SHOWN" "$*"; compose "$@"; }

# remove_tree PATH: rm -rf, also for files of uid 1001 (the app's) when we are not root: what
# rm cannot remove, a throw-away container does (the engine runs as root).
remove_tree() {
	[ -e "$1" ] || [ -L "$1" ] || return 0
	rm -rf "$1" 2>/dev/null && return 0
	docker run --rm --network none --label "com.echobackup.project=$PROJECT" \
		-v "$(dirname "$1"):/parent" --entrypoint rm "$PG_IMAGE" -rf "/parent/$(basename "$1")"
}

# ---------------------------------------------------------------------------------------
# Fingerprint of what a restore must bring back, one line per item, in a stable order.

# Database: per table its row count and the md5 of its rows in a fixed order; per sequence
# its position (a restored Echo must not hand out ids it already used).
fingerprint_db() {
	compose exec -T postgres psql -X -q -At -F ' ' -v ON_ERROR_STOP=1 -U echo -d echo -f - <<-'SQL'
		select format('select %L, count(*), md5(coalesce(string_agg(t::text, E''\n'' order by t::text), '''')) from %I.%I t',
		              'table ' || tablename, schemaname, tablename)
		from pg_tables where schemaname = 'public' order by tablename
		\gexec
		select 'sequence ' || sequencename, coalesce(last_value::text, 'unused')
		from pg_sequences where schemaname = 'public' order by sequencename;
	SQL
}

# ./data: per entry its type, mode, owner, and the sha256 of a file or target of a link.
# Read through a container, as root: the files belong to uid 1001 and some are mode 0600.
fingerprint_files() {
	if [ ! -d "$work/data" ]; then
		echo "data/ does not exist"
		return 0
	fi
	docker run --rm --network none --label "com.echobackup.project=$PROJECT" \
		-v "$work/data:/data:ro" --entrypoint bash "$PG_IMAGE" -c '
		cd /data
		find . -print0 | LC_ALL=C sort -z | while IFS= read -r -d "" p; do
			info="$(stat -c "%F %a %u:%g" "$p")"
			case "$info" in
			"regular file"*) sum="$(sha256sum <"$p")"; echo "file ${info#regular file } data/${p#./} ${sum%% *}" ;;
			"symbolic link"*) echo "link ${info#symbolic link } data/${p#./} -> $(readlink "$p")" ;;
			directory*) echo "dir  ${info#directory } data/${p#./}" ;;
			*) echo "other $info data/${p#./}" ;;
			esac
		done'
}

fingerprint() {
	echo "# database echo"
	fingerprint_db
	echo "# files"
	fingerprint_files
}

# wait_db: PostgreSQL answers a query over TCP. During the image's first start a socket-only
# server runs the init scripts and pg_isready already succeeds; a TCP query does not, yet.
wait_db() {
	local i
	for ((i = 0; i < 180; i++)); do
		if [ "$(compose exec -T -e PGPASSWORD=echo postgres \
			psql -X -h 127.0.0.1 -U echo -d echo -At -c 'select 1' 2>/dev/null)" = 1 ]; then
			note "PostgreSQL answers over TCP (${i}s)"
			return 0
		fi
		sleep 1
	done
	compose logs --tail 30 postgres >&2 || true
	die "PostgreSQL did not answer over TCP within 180s"
}

# ---------------------------------------------------------------------------------------
# Leaving: with --clean remove everything of the demo, whatever happened; else say where
# things are.

clean_up() {
	local leftovers
	printf '\n==> Cleaning up (--clean): the demo stack, its volumes and %s\n' "$work"
	if [ -d "$work" ] && [ ${#COMPOSE[@]} -gt 0 ]; then
		(cd "$work" && run_compose down -v --remove-orphans --timeout 1) || true
	fi
	# Whatever compose did not take: echo-backup's helper containers and volumes, and
	# anything labelled with the project (e.g. from a compose that failed half-way).
	for label in "com.docker.compose.project=$PROJECT" "com.echobackup.project=$PROJECT"; do
		docker ps -a -q --filter "label=$label" | xargs -r docker rm -f -v >/dev/null
		docker volume ls -q --filter "label=$label" | xargs -r docker volume rm -f >/dev/null
		docker network ls -q --filter "label=$label" | xargs -r docker network rm >/dev/null
	done
	cd /
	if [ -f "$work/$MARKER" ]; then
		remove_tree "$work"
	fi
	leftovers="$(
		docker ps -a --format '{{.Names}}' --filter "label=com.docker.compose.project=$PROJECT"
		docker ps -a --format '{{.Names}}' --filter "label=com.echobackup.project=$PROJECT"
		docker volume ls -q --filter "label=com.docker.compose.project=$PROJECT"
		docker volume ls -q --filter "label=com.echobackup.project=$PROJECT"
	)"
	if [ -n "$leftovers" ] || [ -e "$work" ]; then
		printf 'demo: could not remove everything:\n%s\n%s\n' "$leftovers" "$([ -e "$work" ] && echo "$work")" >&2
		return 1
	fi
	note "removed: no container, volume or network of project $PROJECT remains; $work is gone"
	note "(images are kept: $(printf '%s ' "${IMAGES[@]}" | tr ' ' '\n' | sort -u | tr '\n' ' '))"
}

on_exit() {
	local rc=$?
	trap - EXIT
	rm -rf "${state:-}" # fingerprints in the making (a failure between steps 12 and 15)
	# Only a folder we made (and the stack in it) is ours to remove or to talk about.
	if [ "$clean" = 1 ] && [ "$made" = 1 ]; then
		clean_up || rc=1
	elif [ "$rc" != 0 ] && [ "$made" = 1 ]; then
		printf '\ndemo: stopped at step %d; the stack is left as it is in %s.\n' "$step_no" "$work" >&2
		printf '      Remove it with: cd %s && %s down -v   (then delete the folder)\n' "$work" "${COMPOSE_SHOWN:-docker compose}" >&2
	fi
	printf '\ndemo: %s after %ds\n' "$([ "$rc" = 0 ] && echo "done" || echo "FAILED (exit $rc)")" $((SECONDS - t_start))
	exit "$rc"
}
trap on_exit EXIT

# =======================================================================================

printf '==> Setting up; the full output of these steps goes to %s\n' "$BUILD_LOG"

engine_step() {
	"$root/scripts/engine.sh" || return
	SUMMARY="Docker engine $(docker version --format '{{.Server.Version}}') answers"
}
build_step "Docker engine" engine_step

images_step() {
	local img
	img="$(mktemp)"
	# pg-image.sh prints postgres:16 when a registry answers, else a local Debian image it
	# builds once (minutes) that also has redis-server: then it plays all three services.
	"$root/scripts/pg-image.sh" >"$img" || return
	PG_IMAGE="$(cat "$img")"
	rm -f "$img"
	if [ "$PG_IMAGE" = postgres:16 ]; then
		REDIS_IMAGE=redis:7
		if ! docker image inspect "$REDIS_IMAGE" >/dev/null 2>&1; then
			timeout 300 docker pull "$REDIS_IMAGE" || {
				echo "postgres:16 could be pulled but $REDIS_IMAGE not; pull it yourself and re-run"
				return 1
			}
		fi
		APP_IMAGE=$PG_IMAGE # the app is a placeholder that sleeps: any image with `sleep` will do
	else
		REDIS_IMAGE=$PG_IMAGE
		APP_IMAGE=$PG_IMAGE
	fi
	IMAGES=("$PG_IMAGE" "$REDIS_IMAGE" "$APP_IMAGE")
	SUMMARY="postgres: $PG_IMAGE, redis: $REDIS_IMAGE, echo (placeholder app): $APP_IMAGE"
}
build_step "Images" images_step

plugin_step() {
	"$root/scripts/install.sh" || return
	SUMMARY="installed $(docker info --format '{{range .ClientInfo.Plugins}}{{if eq .Name "echobackup"}}{{.Path}} ({{.Version}}){{end}}{{end}}')"
}
build_step "Install the plugin (scripts/install.sh)" plugin_step

compose_step() {
	# `docker echobackup` needs no compose CLI (it reads the project itself); the demo needs one
	# to start and destroy the stack. Prefer the user's own; never install one into ~/.docker.
	local v version cache bin
	if docker compose version >/dev/null 2>&1; then
		COMPOSE=(docker compose)
		COMPOSE_SHOWN="docker compose"
		SUMMARY="the docker compose plugin, $(docker compose version --short)"
		return 0
	fi
	if command -v docker-compose >/dev/null 2>&1 &&
		v="$(docker-compose version --short 2>/dev/null)" && v="${v#v}" && [ "${v%%.*}" -ge 2 ] 2>/dev/null; then
		COMPOSE=(docker-compose)
		COMPOSE_SHOWN="docker-compose"
		SUMMARY="no docker compose plugin; $(command -v docker-compose) $v"
		return 0
	fi
	# Same binary, same cache as the e2e rig (e2e/main_test.go, installCompose): built once
	# from the compose module that go.mod pins (compose v1 lacks what the demo uses).
	version="$(cd "$root" && go list -m -f '{{.Version}}' "$COMPOSE_MODULE")" || return
	cache="${ECHOBACKUP_E2E_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/echobackup-e2e}"
	bin="$cache/docker-compose-$version-$(go env GOOS)-$(go env GOARCH)"
	if [ ! -x "$bin" ]; then
		echo "building the compose CLI $version from go.mod into $bin"
		mkdir -p "$cache" || return
		(cd "$root" && go build -ldflags "-X $COMPOSE_MODULE/internal.Version=$version" -o "$bin.$$.partial" "$COMPOSE_MODULE/cmd") || return
		mv -f "$bin.$$.partial" "$bin" || return
	fi
	COMPOSE=("$bin")
	COMPOSE_SHOWN="$bin"
	SUMMARY="no compose plugin: $bin, built from go.mod ($version)"
}
build_step "Compose CLI" compose_step

step "Demo folder: $work"
if [ -f "$work/$MARKER" ]; then
	note "an earlier demo is here: refreshing it (its stack, data and backups are replaced)"
fi
mkdir -p "$work"
for f in "${DEMO_FILES[@]}"; do
	cp "$root/demo/$f" "$work/$f"
done
echo "This folder was made by $root/scripts/demo.sh, which may delete and recreate it." >"$work/$MARKER"
made=1
# compose.yaml reads its images from .env, so later commands (ps, down) work without us.
cat >"$work/.env" <<EOF
ECHO_DEMO_PG_IMAGE=$PG_IMAGE
ECHO_DEMO_REDIS_IMAGE=$REDIS_IMAGE
ECHO_DEMO_APP_IMAGE=$APP_IMAGE
EOF
cd "$work"
# The project name is fixed (echo-demo): this also removes a demo started from another folder.
if [ -n "$(docker ps -a -q --filter "label=com.docker.compose.project=$PROJECT")$(docker volume ls -q --filter "label=com.docker.compose.project=$PROJECT")" ]; then
	run_compose down -v --remove-orphans --timeout 1
fi
remove_tree "$work/data"
remove_tree "$work/backups"
rm -f "$work"/fingerprint-*.txt
mkdir data
note "$(ls -A | tr '\n' ' ')"

step "Start the stack"
run_compose up -d --wait --wait-timeout 180
wait_db

step "Sample data: the database (seed.sql) and ./data (as Echo would write it, owned by 1001)"
compose exec -T postgres psql -X -q -v ON_ERROR_STOP=1 -U echo -d echo -f - <seed.sql
# Written inside the app container, as root, then handed to the app's user 1001.
compose exec -T -u 0 echo sh -eu <<'SH'
cd /app/data
rnd() { head -c "$2" /dev/urandom >"$1"; }
hex() { head -c "$1" /dev/urandom | od -An -tx1 | tr -d ' \n'; }
mkdir -p covers metadata/artists metadata/albums uploads/user-2 uploads/user-3 uploads/import uploads/empty/nested
cat >setup.json <<'JSON'
{
  "setupComplete": true,
  "serverName": "Echo (demo)",
  "adminUser": "admin",
  "musicPaths": ["/mnt/music"],
  "version": "1.4.2"
}
JSON
printf 'JWT_SECRET=%s\nJWT_REFRESH_SECRET=%s\nSESSION_SECRET=%s\n' "$(hex 32)" "$(hex 32)" "$(hex 16)" >secrets.env
chmod 600 secrets.env
i=0; while [ $i -lt 12 ]; do rnd covers/$i.jpg $((1000 + i * 997)); i=$((i + 1)); done
rnd covers/large.jpg 3145728
i=1; while [ $i -le 20 ]; do rnd metadata/artists/$i.jpg $((500 + i * 131)); i=$((i + 1)); done
rnd uploads/user-2/avatar.png 20000
chmod 640 uploads/user-2/avatar.png
rnd 'uploads/user-3/Mötley Crüe – live (2019).jpg' 12345
echo 'imported from an older Echo' >uploads/import/notes.txt
ln -s ../covers/1.jpg uploads/latest-cover.jpg
chown -R -h 1001:1001 /app/data
SH
note "database: $(compose exec -T postgres psql -X -At -U echo -d echo -c \
	"select sum(n_live_tup) || ' rows in ' || count(*) || ' tables' from pg_stat_user_tables")"
note "data/:    $(compose exec -T echo sh -c 'find /app/data -type f | wc -l') files, $(compose exec -T echo du -sh /app/data | cut -f1)"

step "What a backup holds: docker echobackup status"
run docker echobackup status

step "Back up: docker echobackup save"
run docker echobackup save

step "Check the backup, with a test restore: docker echobackup verify --deep"
run docker echobackup verify --deep

step "Backups of the project: docker echobackup list"
run docker echobackup list

step "Fingerprint the deployment (rows per table, files with modes and owners)"
state="$(mktemp -d "${TMPDIR:-/tmp}/echo-demo.XXXXXX")"
fingerprint >"$state/before.txt"
note "$(grep -c '^table ' "$state/before.txt") tables, $(grep -c '^sequence ' "$state/before.txt") sequences, $(grep -cE '^(file|link|dir)' "$state/before.txt") entries under data/"

step "Disaster: remove the containers AND the volumes, and delete ./data"
run_compose down -v
# Our own files are rm'd here; the app's (uid 1001) need root: see remove_tree.
printf '$ rm -rf data\n'
remove_tree "$work/data"
note "left: $(ls -A | tr '\n' ' ')   volumes of $PROJECT: $(docker volume ls -q --filter "label=com.docker.compose.project=$PROJECT" | wc -l)"

step "Restore: docker echobackup restore latest --yes"
run docker echobackup restore latest --yes
run_compose ps

step "Compare the fingerprints"
wait_db
fingerprint >"$state/after.txt"
cp "$state/before.txt" "$work/fingerprint-before.txt"
cp "$state/after.txt" "$work/fingerprint-after.txt"
rm -rf "$state"
if ! diff -u fingerprint-before.txt fingerprint-after.txt; then
	printf '\nFAIL: the restored deployment differs from the one that was saved (diff above)\n'
	[ "$clean" = 1 ] || printf '      Both fingerprints are in %s\n' "$work"
	exit 1
fi
printf '\nPASS: the restored deployment is identical to the saved one: %s\n' \
	"$(grep -c '^table ' fingerprint-after.txt) tables (same rows), $(grep -cE '^(file|link|dir)' fingerprint-after.txt) files and folders (same bytes, modes, owners)"

if [ "$clean" = 1 ]; then
	exit 0 # on_exit removes the demo
fi
step "The demo stack is left running"
if [ "$(id -u)" = 0 ]; then
	rm_hint="rm -rf $work"
else # data/ belongs to uid 1001: only root can delete it
	rm_hint="docker run --rm -v $(dirname "$work"):/p --entrypoint rm $PG_IMAGE -rf /p/$(basename "$work")"
fi
cat <<EOF
    Look at it:
      cd $work
      $COMPOSE_SHOWN ps
      $COMPOSE_SHOWN exec postgres psql -U echo -d echo -c 'table artists limit 8'
      ls -la data; cat fingerprint-after.txt
      docker echobackup list
    Remove it (containers, volumes), then the folder:
      cd $work && $COMPOSE_SHOWN down -v
      $rm_hint
    Or run again with --clean, which removes everything at the end.
EOF
