#!/usr/bin/env bash
# Benchmark `docker echobackup save|restore` against the manual procedure of Echo's backup docs
# (pg_dump > backup.sql + tar czf ./data; restore with psql + tar xzf), on one Echo-shaped stack
# with a generated data set, and print a table of times, sizes, ratios and peak memory.
# With --migrate, also `docker echobackup migrate` of that stack to a second engine; with --repo,
# also saves into and restores from an encrypted, deduplicated repository in a local folder.
#
#   scripts/bench.sh [--scale N] [--keep] [--skip-restore] [--migrate] [--repo]
#
#   --scale N       data set size (default $BENCH_SCALE, else 1): 1 = a ~1 GB database and ~1.5 GB
#                   of ./data; 0.05 is a quick smoke run
#   --keep          leave the stack, its folder and DOCKER_CONFIG in place for inspection
#   --skip-restore  time the saves only
#   --migrate       also time `docker echobackup migrate --to-context` onto a second engine on this
#                   machine (scripts/engine2.sh; it gets a project folder of its own, as another host
#                   would) reached over ssh (scripts/sshd.sh: a context host=ssh://root@ADDRESS), check
#                   that the target holds what the source does, and time the manual equivalent of
#                   Echo's page over the same ssh server: the manual save, scp of its two files,
#                   then over ssh: compose up -d postgres, psql < backup.sql, tar xzf, compose up -d
#   --repo          after the folder steps, on the same data set: `repo init` of a fresh folder
#                   repository, a first `save --repo` (time and RSS vs our folder save), 16 more
#                   saves each after a day of ordinary change (scripts/bench-day.sql and 20 new
#                   covers: time vs the manual save, bytes added, 17 backups' size vs one), then
#                   `restore latest --yes` from it vs our restore of a folder archive of the same
#                   state. `scripts/bench.sh --scale 0.05 --repo` is its quick smoke run
#
# Needs root (the manual restore's tar xzf must give files back to uid 1001, as for Echo), go,
# the docker CLI and an engine. Uses its own DOCKER_CONFIG (never ~/.docker) and its own compose
# project, ebbench-<random>; everything it creates is removed on exit unless --keep.
# Exits non-zero if a `docker echobackup` command fails; the targets are printed, not enforced.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"

# Targets the team set (ours / manual, or absolute). Printed beside the results only.
TARGET_SAVE_TIME=0.25
TARGET_SIZE=1.0
TARGET_SAVE_RSS_MB=64
TARGET_DOWNTIME=0.45
TARGET_RESTORE_TIME=0.7
TARGET_MIGRATE_TIME=0.5
# --repo: first save vs our folder save; a re-save after a day vs the manual save, and what it
# adds as % of the data set; 17 backups' storage vs the first one's; restore vs ours from a folder.
TARGET_REPO_SAVE_TIME=1.3
TARGET_REPO_RSS_MB=100
TARGET_RESAVE_TIME=0.2
TARGET_RESAVE_PCT=2
TARGET_REPO_17=1.3
TARGET_REPO_RESTORE_TIME=1.2
REPO_BACKUPS=17   # the default GFS policy's worth
DAY_COVERS=20     # new covers per day of change

scale="${BENCH_SCALE:-1}"
keep=0
skip_restore=0
migrate=0
repo=0
repo_dir=""  # the --repo repository (a folder in $work) and its password file (0600)
repo_pw=""
eng2_dir=""  # the second engine's folder (scripts/engine2.sh), while it runs
eng2_ctx=""  # its docker context (its unix socket: for checks, never timed)
sshd_dir=""  # the ssh server in front of it (scripts/sshd.sh), while it runs
ssh_ctx=""   # the docker context host=ssh://root@ssh_addr, which the migrations use
ssh_addr=""
work=""    # temp folder: DOCKER_CONFIG, stack folder, logs
stack=""   # the compose project folder (Echo's "echo/" folder)
name=""    # compose project name
pg=""      # the PostgreSQL container's name
image=""   # the PostgreSQL image every service runs (scripts/pg-image.sh)
failed=0   # set when one of our commands fails
declare -A R=() # results, printed by report

log() { printf '[bench %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() {
	log "error: $*"
	exit 1
}

usage() { sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed '$d; s/^# \{0,1\}//'; }

parse_args() {
	while [ $# -gt 0 ]; do
		case "$1" in
		--scale) [ $# -ge 2 ] || die "--scale needs a value"; scale="$2"; shift ;;
		--scale=*) scale="${1#*=}" ;;
		--keep) keep=1 ;;
		--skip-restore) skip_restore=1 ;;
		--migrate) migrate=1 ;;
		--repo) repo=1 ;;
		-h | --help) usage; exit 0 ;;
		*) usage >&2; die "unknown argument: $1" ;;
		esac
		shift
	done
	awk -v s="$scale" 'BEGIN { exit !(s ~ /^[0-9]*\.?[0-9]+$/ && s > 0) }' ||
		die "scale must be a positive number, not '$scale'"
}

# --- arithmetic and formatting (bash has integers only) ---------------------------------------

now() { echo "$EPOCHREALTIME"; }
since() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.2f", b - a }'; }
calc() { awk "BEGIN { printf \"%.${2:-2}f\", $1 }"; }
mb() { calc "$1 / 1000000" 1; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.2f", a / b; else printf "-" }'; }
# verdict VALUE OP TARGET, OP "<=" or "<": "ok" or "MISSED" ("-" without a value).
verdict() {
	awk -v v="$1" -v op="$2" -v t="$3" 'BEGIN {
		if (v == "-" || v == "") { print "-"; exit }
		met = op == "<" ? v + 0 < t + 0 : v + 0 <= t + 0
		print met ? "ok" : "MISSED"
	}'
}

# go_seconds "1m2.5s" -> 62.50: the plugin prints Go durations.
go_seconds() {
	awk -v d="$1" 'BEGIN {
		t = 0
		while (match(d, /^[0-9.]+(h|m|s|ms|us|µs|ns)/)) {
			tok = substr(d, 1, RLENGTH); d = substr(d, RLENGTH + 1)
			u = tok; sub(/^[0-9.]+/, "", u)
			f = u == "h" ? 3600 : u == "m" ? 60 : u == "s" ? 1 : u == "ms" ? 1e-3 : u == "ns" ? 1e-9 : 1e-6
			t += (tok + 0) * f
		}
		printf "%.2f", t
	}'
}

apparent() { du -sb "$@" | awk '{ s += $1 } END { print s + 0 }'; }
on_disk() { du -s --block-size=1 "$@" | awk '{ s += $1 } END { print s + 0 }'; }
max_rss_mb() { awk -F': ' '/Maximum resident set size/ { printf "%.1f", $2 / 1024 }' "$1"; }

# --- setup (not timed) -------------------------------------------------------------------------

# The same isolation as the e2e rig: a fresh DOCKER_CONFIG (keeping the chosen engine), and
# none of the user's compose or echo-backup settings.
isolate_env() {
	if [ -z "${DOCKER_HOST:-}" ] && [ -z "${DOCKER_CONTEXT:-}" ]; then
		local ctx
		ctx="$(docker context show 2>/dev/null || echo default)"
		if [ "$ctx" != default ]; then
			DOCKER_HOST="$(docker context inspect --format '{{.Endpoints.docker.Host}}' "$ctx")"
			export DOCKER_HOST
		fi
	fi
	local v
	for v in $(compgen -e); do
		case "$v" in COMPOSE_* | ECHOBACKUP_DIR) unset "$v" ;; esac
	done
	export DOCKER_CONFIG="$work/docker-config" COMPOSE_ANSI=never NO_COLOR=1
	mkdir -p "$DOCKER_CONFIG/cli-plugins"
}

# Our plugin from this checkout; compose from the e2e rig's cache, else built (into $work, so
# nothing is left behind) from the version go.mod pins.
install_plugins() {
	local plugins="$DOCKER_CONFIG/cli-plugins" module=github.com/docker/compose/v5 version cached
	log "building docker-echobackup"
	(cd "$root" && go build -o "$plugins/docker-echobackup" .)

	version="$(cd "$root" && go list -m -f '{{.Version}}' "$module")"
	cached="${ECHOBACKUP_E2E_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/echobackup-e2e}/docker-compose-$version-$(go env GOOS)-$(go env GOARCH)"
	if [ -x "$cached" ]; then
		cp "$cached" "$plugins/docker-compose"
	else
		log "building the compose CLI $version (no cached $cached; about a minute)"
		(cd "$root" && go build -ldflags "-X $module/internal.Version=$version" -o "$plugins/docker-compose" "$module/cmd")
	fi
	docker compose version >/dev/null || die "docker compose does not run from $plugins"
}

# Refuse to start when the data set (and its copies: manual backups, our archives, the restore's
# staging and safety backup) might fill the disk.
check_space() {
	# --migrate: the target's copy of the data set, and the migration's own archive; --repo: the
	# repository, one more archive and the restores' staging and safety backups.
	local copies=$((3 + 2 * migrate + 2 * repo)) need dir avail docker_root
	need=$(calc "$scale * 2.6e9 * $copies" 0)
	docker_root="$(docker info --format '{{.DockerRootDir}}' 2>/dev/null || true)"
	for dir in "$work" ${docker_root:+"$docker_root"}; do
		[ -d "$dir" ] || continue # a remote engine's folder is not ours to check
		avail=$(df -PB1 "$dir" | awk 'NR == 2 { print $4 }')
		if [ "$avail" -lt "$need" ]; then
			die "$dir has $(mb "$avail") MB free; scale $scale needs at least $(mb "$need") MB (${copies}x the data set)"
		fi
	done
}

# The seed fixture (Echo's documented layout) in $work/<name>/, with an override file: the
# fixture pins container_name echo-postgres, which would collide with the e2e stacks.
create_stack() {
	name="ebbench-$(od -An -N4 -tx1 /dev/urandom | tr -d ' \n')"
	stack="$work/$name"
	pg="$name-postgres"
	cp -r "$root/e2e/testdata/seed" "$stack"
	cat >"$stack/compose.override.yaml" <<-EOF
		# Added by scripts/bench.sh: a container name of this bench's own.
		services:
		  postgres:
		    container_name: $pg
	EOF
	mkdir -p "$work/music"
	export COMPOSE_PROJECT_NAME="$name" ECHO_MUSIC_DIR="$work/music" ECHOBACKUP_PG_IMAGE="$image"
	cd "$stack"
	log "starting stack $name in $stack"
	docker compose up -d --wait --wait-timeout 180 >"$work/up.log" 2>&1 || {
		cat "$work/up.log" >&2
		die "docker compose up failed"
	}
	wait_db
}

# on CONTEXT CMD...: the docker CLI on the engine of CONTEXT, or on the first one when "".
on() {
	local c="$1"
	shift
	docker ${c:+--context "$c"} "$@"
}

# During the image's first start only a socket-only server runs: wait for TCP.
# wait_db [CONTEXT]
wait_db() {
	local i
	for ((i = 0; i < 600; i++)); do
		on "${1:-}" exec "$pg" psql -X -h 127.0.0.1 -U echo -d echo -Atc 'select 1' >/dev/null 2>&1 && return 0
		sleep 0.2
	done
	die "PostgreSQL in $pg${1:+ on context $1} did not answer within 2 minutes"
}

# psql_q QUERY [CONTEXT]
psql_q() { on "${2:-}" exec "$pg" psql -X -U echo -d echo -Atc "$1"; }

# The schema of the e2e suite, then bulk rows; ./data from scripts/benchdata.
generate_data() {
	local t0 out
	t0=$(now)
	log "generating the database (scale $scale)"
	{
		cat "$root/e2e/testdata/schema.sql"
		cat "$root/scripts/bench-data.sql"
	} | docker exec -i "$pg" psql -X -q -v ON_ERROR_STOP=1 -v scale="$scale" -U echo -d echo >"$work/gen-db.log" 2>&1 || {
		tail -n 20 "$work/gen-db.log" >&2
		die "generating the database failed"
	}
	log "generating ./data"
	out="$(cd "$root" && go run ./scripts/benchdata -dir "$stack/data" -scale "$scale" -uid 1001 -gid 1001)"
	R[db_bytes]=$(psql_q "select pg_database_size('echo')")
	R[plays]=$(psql_q "select count(*) from play_history")
	R[tracks]=$(psql_q "select count(*) from tracks")
	R[ratings]=$(psql_q "select count(*) from ratings")
	R[files]=${out% *}
	R[files_bytes]=$(apparent "$stack/data")
	R[gen_s]=$(since "$t0")
	log "data set ready in ${R[gen_s]}s: database $(mb "${R[db_bytes]}") MB, ./data $(mb "${R[files_bytes]}") MB in ${R[files]} files"
}

# Both sides run with the same warm page cache: read everything once, and flush writes left over
# from the step before each timed step, so no step pays for another's writeback.
warm_up() {
	log "warming the page cache"
	sync
	tar -C "$stack" -cf - data | cat >/dev/null
	psql_q "select count(*) from play_history; select count(*) from tracks; select count(*) from ratings" >/dev/null
}

# A fingerprint to check a restore against: row counts and the files' names, sizes and owners.
# fingerprint [CONTEXT FOLDER]: of the stack on the engine of CONTEXT, whose project folder is
# FOLDER on this host (default: the first engine's, $stack).
fingerprint() {
	psql_q "select (select count(*) from users), (select count(*) from tracks), (select count(*) from ratings),
		(select count(*) from playlist_tracks), (select count(*) from play_history), (select sum(played_ms) from play_history)" "${1:-}"
	# Sizes of regular files only: a folder's own size depends on how it was filled.
	(cd "${2:-$stack}" && find data \( -type f -printf '%p %s %U:%G %m\n' \) -o -printf '%p %y %U:%G %m\n' | LC_ALL=C sort | md5sum)
}

# run_ours LABEL -- CMD...: runs one of our commands under /usr/bin/time -v; on failure reports
# it with its output, marks the run failed and returns 1.
run_ours() {
	local label="$1" rc=0
	shift 2
	/usr/bin/time -v -o "$work/$label.time" "$@" >"$work/$label.out" 2>"$work/$label.err" || rc=$?
	if [ "$rc" -ne 0 ]; then
		failed=1
		{
			echo "FAILED (exit $rc, scale $scale, in $stack): $*"
			echo "--- stdout"; cat "$work/$label.out"
			echo "--- stderr"; cat "$work/$label.err"
		} >&2
		return 1
	fi
}

# --- timed steps -------------------------------------------------------------------------------

# Exactly the docs' "Manual Backup": pg_dump to backup.sql, then tar czf of ./data.
manual_save() {
	local t0 t1
	log "manual save: pg_dump > backup.sql; tar czf data-backup.tar.gz ./data"
	sync
	t0=$(now)
	docker exec "$pg" pg_dump -U echo echo >backup.sql
	R[msave_db_s]=$(since "$t0")
	t1=$(now)
	tar czf data-backup.tar.gz ./data
	R[msave_files_s]=$(since "$t1")
	R[msave_s]=$(since "$t0")
	R[m_apparent]=$(apparent backup.sql data-backup.tar.gz)
	R[m_disk]=$(on_disk backup.sql data-backup.tar.gz)
	log "manual save: ${R[msave_s]}s"
}

our_save() {
	local t0
	log "our save: docker echobackup save --quiet"
	sync
	t0=$(now)
	run_ours save -- docker echobackup save --quiet || return 1
	R[osave_s]=$(since "$t0")
	R[archive]="$(tail -n 1 "$work/save.out")"
	[ -f "${R[archive]}" ] || {
		failed=1
		log "FAILED: save printed '${R[archive]}', which is not a file"
		return 1
	}
	R[o_apparent]=$(apparent "${R[archive]}")
	R[o_disk]=$(on_disk "${R[archive]}")
	R[osave_rss]=$(max_rss_mb "$work/save.time")
	log "our save: ${R[osave_s]}s, $(mb "${R[o_apparent]}") MB, peak RSS ${R[osave_rss]} MB"
}

# Exactly the docs' "Restore a Backup", into the still-full database as the docs leave it, plus
# one thing they leave out: waiting for PostgreSQL to accept connections before psql.
manual_restore() {
	local t0
	log "manual restore: down; up -d postgres; psql < backup.sql; tar xzf; up -d"
	sync
	t0=$(now)
	docker compose down >"$work/mrestore-compose.log" 2>&1
	docker compose up -d postgres >>"$work/mrestore-compose.log" 2>&1
	wait_db
	cat backup.sql | docker exec -i "$pg" psql -U echo echo >"$work/mrestore-psql.out" 2>"$work/mrestore-psql.err"
	tar xzf data-backup.tar.gz
	docker compose up -d >>"$work/mrestore-compose.log" 2>&1
	R[mrestore_s]=$(since "$t0")
	R[mrestore_errors]=$(grep -c 'ERROR:' "$work/mrestore-psql.err" || true)
	# A COPY into a table that still holds its rows fails on the first duplicate key, so the
	# docs' restore may reload nothing at all: count the tables it did reload.
	R[mrestore_copies]=$(grep -c '^COPY [0-9]' "$work/mrestore-psql.out" || true)
	R[dump_copies]=$(grep -c '^COPY .* FROM stdin;$' backup.sql || true)
	log "manual restore: ${R[mrestore_s]}s, ${R[mrestore_errors]} ERROR lines from psql"
}

# manual_restore_fresh is the manual procedure done so that it does restore: into an empty
# database and folder (down -v, rm -rf data first). The docs' own order reloads nothing, so
# this is the fair baseline for our restore's time. It runs last: it wipes the stack.
manual_restore_fresh() {
	local t0
	log "manual restore, working variant: down -v; rm -rf data; up -d postgres; psql < backup.sql; tar xzf; up -d"
	sync
	t0=$(now)
	docker compose down -v >"$work/mfresh-compose.log" 2>&1
	rm -rf data
	docker compose up -d postgres >>"$work/mfresh-compose.log" 2>&1
	wait_db
	docker exec -i "$pg" psql -q -U echo echo <backup.sql >/dev/null 2>"$work/mfresh-psql.err"
	tar xzf data-backup.tar.gz
	docker compose up -d >>"$work/mfresh-compose.log" 2>&1
	R[mfresh_s]=$(since "$t0")
	R[mfresh_errors]=$(grep -c 'ERROR:' "$work/mfresh-psql.err" || true)
	log "manual restore, working variant: ${R[mfresh_s]}s, ${R[mfresh_errors]} ERROR lines"
}

our_restore() {
	log "our restore: docker echobackup restore latest --yes"
	restore_checked restore -- docker echobackup restore latest --yes || return 1
	R[orestore_s]=${R[restore_s]}
	R[orestore_rss]=${R[restore_rss]}
	R[downtime_raw]=${R[restore_down_raw]}
	R[downtime_s]=$(go_seconds "${R[restore_down_raw]}")
	log "our restore: ${R[orestore_s]}s, services down for ${R[downtime_raw]}, peak RSS ${R[orestore_rss]} MB"
}

# restore_checked LABEL -- CMD...: times one of our restores (CMD) and checks that the deployment
# comes back up with the data it had (the backup restored was saved from it). Sets R[LABEL_s],
# R[LABEL_rss] and R[LABEL_down_raw] (what it printed as "services down for X").
restore_checked() {
	local label="$1" t0 down before after
	shift
	before="$(fingerprint)"
	sync
	t0=$(now)
	run_ours "$label" "$@" || return 1
	R[${label}_s]=$(since "$t0")
	R[${label}_rss]=$(max_rss_mb "$work/$label.time")
	down="$(sed -n 's/.*services down for \([^)]*\)).*/\1/p' "$work/$label.out" | tail -n 1)"
	if [ -z "$down" ]; then
		failed=1
		log "FAILED: $label did not print 'services down for X':"
		cat "$work/$label.out" >&2
		return 1
	fi
	R[${label}_down_raw]="$down"
	# Not timed: the deployment must be up, with the data it had.
	wait_db
	after="$(fingerprint)"
	if [ "$before" != "$after" ]; then
		failed=1
		log "FAILED: after $label the data differs from the saved state:"
		diff <(echo "$before") <(echo "$after") >&2 || true
		return 1
	fi
}

# --- repository (--repo) -----------------------------------------------------------------------

# ours_repo LABEL ARGS...: `docker echobackup ARGS` on the bench's repository, as run_ours runs
# it. The password reaches it as a 0600 file, never on a command line.
ours_repo() {
	local label="$1"
	shift
	# The repository's caches go with the run's folder, not into ~/.cache.
	run_ours "$label" -- env ECHOBACKUP_PASSWORD_FILE="$repo_pw" XDG_CACHE_HOME="$work/cache" docker echobackup "$@" --repo "$repo_dir"
}

# repo_status KEY: `repo status --format json` (repository.Status) into R[KEY_stored] (storage
# bytes), R[KEY_logical] (the snapshots' bytes), R[KEY_dedup] and R[KEY_snapshots]. Not timed.
repo_status() {
	local key="$1" v
	ours_repo repo-status repo status --format json || return 1
	v="$(jq -er '[.storedBytes, .logicalBytes, .dedupRatio, .snapshots] | map(tostring) | join(" ")' "$work/repo-status.out")" || {
		failed=1
		log "FAILED: repo status --format json lacks storedBytes, logicalBytes, dedupRatio or snapshots:"
		cat "$work/repo-status.out" >&2
		return 1
	}
	read -r "R[${key}_stored]" "R[${key}_logical]" "R[${key}_dedup]" "R[${key}_snapshots]" <<<"$v"
}

# Not timed: a fresh repository in a folder of $work, with a generated password in a 0600 file.
repo_init() {
	repo_dir="$work/repo"
	repo_pw="$work/repo-password"
	(umask 077 && head -c 32 /dev/urandom | base64 >"$repo_pw")
	log "repo init --repo $repo_dir"
	ours_repo repo-init repo init
}

# repo_save LABEL: one timed `save --quiet` into the repository; sets R[LABEL_s], R[LABEL_rss]
# and the repository's status after it (repo_status LABEL).
repo_save() {
	local label="$1" t0
	sync
	t0=$(now)
	ours_repo "$label" save --quiet || return 1
	R[${label}_s]=$(since "$t0")
	R[${label}_rss]=$(max_rss_mb "$work/$label.time")
	repo_status "$label" || return 1
}

# The first backup into the repository, of the data set our_save saved: everything is new.
repo_first_save() {
	log "repository, first save: docker echobackup save --repo $repo_dir --quiet"
	repo_save rsave || return 1
	R[rsave_du]=$(apparent "$repo_dir")
	log "repository, first save: ${R[rsave_s]}s, stored $(mb "${R[rsave_stored]}") MB, peak RSS ${R[rsave_rss]} MB"
}

# day_of_change DAY: what a day of ordinary use changes (not timed): scripts/bench-day.sql's plays,
# ratings and playlist edits, and DAY_COVERS new covers in ./data/covers as benchdata writes
# them (a JPEG header on random bytes, 100-500 KiB, owned by uid 1001).
day_of_change() {
	local day="$1" i size f
	docker exec -i "$pg" psql -X -q -v ON_ERROR_STOP=1 -U echo -d echo <"$root/scripts/bench-day.sql" >"$work/day-$day.log" 2>&1 || {
		tail -n 20 "$work/day-$day.log" >&2
		die "day $day of change: scripts/bench-day.sql failed"
	}
	for ((i = 1; i <= DAY_COVERS; i++)); do
		size=$(((100 + RANDOM % 401) * 1024))
		f="$stack/data/covers/day$day-$i.jpg"
		{
			printf '\xff\xd8\xff\xe0\x00\x10JFIF\x00'
			head -c $((size - 13)) /dev/urandom
			printf '\xff\xd9'
		} >"$f"
		chown 1001:1001 "$f"
		R[day_cover_bytes]=$((${R[day_cover_bytes]:-0} + size))
	done
}

# Days 1..REPO_BACKUPS-1: a day of change, then a timed re-save. Day 1's re-save is the one the
# targets judge; the median of all of them shows how steady that is.
repo_resaves() {
	local day before times=""
	for ((day = 1; day < REPO_BACKUPS; day++)); do
		day_of_change "$day"
		before=${R[rsave_stored]}
		[ "$day" = 1 ] || before=${R[resave_stored]}
		repo_save resave || return 1
		times+="${R[resave_s]} "
		if [ "$day" = 1 ]; then
			R[resave1_s]=${R[resave_s]}
			R[resave1_rss]=${R[resave_rss]}
			R[resave1_added]=$((R[resave_stored] - before))
			log "repository, re-save after day 1: ${R[resave1_s]}s, added $(mb "${R[resave1_added]}") MB"
		fi
	done
	R[resave_median_s]=$(tr ' ' '\n' <<<"$times" | grep . | sort -n | awk '{ v[NR] = $1 } END { printf "%.2f", NR % 2 ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }')
	R[resave_max_s]=$(tr ' ' '\n' <<<"$times" | grep . | sort -n | tail -n 1)
	repo_status r17 || return 1
	R[r17_du]=$(apparent "$repo_dir")
	log "repository after $REPO_BACKUPS backups: $(mb "${R[r17_stored]}") MB in ${R[r17_snapshots]} snapshots; re-saves: median ${R[resave_median_s]}s, max ${R[resave_max_s]}s"
}

# Restore of the last state from the repository, against our restore from the folder of an archive
# of the same state (saved here, not timed), so both move the same data back.
repo_restores() {
	local archive
	log "repository: saving a folder archive of the same state (not timed)"
	run_ours fsave-final -- docker echobackup save --quiet || return 1
	archive="$(tail -n 1 "$work/fsave-final.out")"
	R[final_archive]=$(apparent "$archive")
	log "our restore from the folder, of the same state: docker echobackup restore $(basename "$archive") --yes"
	restore_checked frestore -- docker echobackup restore "$archive" --yes || return 1
	log "our restore from the folder: ${R[frestore_s]}s, peak RSS ${R[frestore_rss]} MB"
	log "repository restore: docker echobackup restore latest --yes --repo $repo_dir"
	restore_checked rrestore -- env ECHOBACKUP_PASSWORD_FILE="$repo_pw" XDG_CACHE_HOME="$work/cache" docker echobackup restore latest --yes --repo "$repo_dir" || return 1
	R[rrestore_same]=yes
	log "repository restore: ${R[rrestore_s]}s, services down for ${R[rrestore_down_raw]}, peak RSS ${R[rrestore_rss]} MB"
}

# The --repo steps, after the folder ones (they change the data set, which the folder restores
# check against). The restores of the folder steps wrote the data back: warm the cache again.
repo_steps() {
	warm_up
	repo_init || return 1
	repo_first_save || return 1
	repo_resaves || return 1
	[ "$skip_restore" = 1 ] || repo_restores
}

# --- migrate (--migrate) -----------------------------------------------------------------------

# The target: a second engine with a project folder of its own, so the data folder a migration
# writes there is not the source's (scripts/engine2.sh --private), and the stack's images.
# Not timed: a real target is a host that already runs Docker and has pulled the images.
start_engine2() {
	local out t0 img
	log "starting a second engine as the migration's target (scripts/engine2.sh)"
	t0=$(now)
	out="$("$root/scripts/engine2.sh" start --prefix ebbench-eng2- --private "$stack")" || die "the second engine did not start"
	eng2_dir="$(sed -n 's/^ENGINE2_DIR=//p' <<<"$out")"
	eng2_ctx="$(sed -n 's/^ENGINE2_CONTEXT=//p' <<<"$out")"
	[ -n "$eng2_dir" ] && [ -n "$eng2_ctx" ] || die "engine2.sh start printed no ENGINE2_DIR and ENGINE2_CONTEXT: $out"
	R[eng2_up_s]=$(since "$t0")
	t0=$(now)
	for img in $(docker compose config --images | sort -u); do
		log "copying image $img: docker save | docker --context $eng2_ctx load"
		docker save "$img" | docker --context "$eng2_ctx" load -q >/dev/null
	done
	R[eng2_images_s]=$(since "$t0")
	log "second engine $eng2_ctx up in ${R[eng2_up_s]}s, images copied in ${R[eng2_images_s]}s"
}

# The target's project folder, as seen from this host.
target_stack() { echo "$eng2_dir/private$stack"; }

# The ssh server in front of the target, as another host would have: its own key, known_hosts
# and contexts; its ssh and scp first in PATH (they carry the rig's client config). The remote
# docker CLI gets the compose plugin, as a host that runs compose deployments has. Not timed.
start_sshd() {
	local out
	log "starting an ssh server in front of it (scripts/sshd.sh)"
	out="$("$root/scripts/sshd.sh" start "$eng2_dir" --prefix ebbench-ssh-)" || die "the ssh server did not start"
	sshd_dir="$(sed -n 's/^SSHD_DIR=//p' <<<"$out")"
	ssh_ctx="$(sed -n 's/^SSHD_CONTEXT=//p' <<<"$out")"
	ssh_addr="$(sed -n 's/^SSHD_ADDRESS=//p' <<<"$out")"
	[ -n "$sshd_dir" ] && [ -n "$ssh_ctx" ] && [ -n "$ssh_addr" ] || die "sshd.sh start printed no SSHD_DIR, SSHD_CONTEXT and SSHD_ADDRESS: $out"
	PATH="$(sed -n 's/^SSHD_PATH=//p' <<<"$out"):$PATH"
	export PATH
	mkdir -p "$sshd_dir/remote-docker-config/cli-plugins"
	cp "$DOCKER_CONFIG/cli-plugins/docker-compose" "$sshd_dir/remote-docker-config/cli-plugins/"
	remote docker compose version >/dev/null || die "docker compose does not run on the target over ssh"
	log "ssh server on $ssh_addr, context $ssh_ctx ($(docker context inspect --format '{{.Endpoints.docker.Host}}' "$ssh_ctx"))"
}

# remote_rss_sampler: until killed, the largest RSS (KiB) of one process the ssh server runs for
# its sessions (sshd's session processes, the remote `docker system dial-stdio`), every 0.2s,
# one line per sample into $work/remote-rss.
remote_rss_sampler() {
	local listener
	listener="$(sed -n 's/^pid=//p' "$sshd_dir/state" | tail -n 1)"
	: >"$work/remote-rss"
	while :; do
		tree_rss "$listener" | sort -n | tail -n 1 >>"$work/remote-rss"
		sleep 0.2
	done
}

# tree_rss PID: the RSS (KiB) of each process below PID.
tree_rss() {
	local p
	for p in $(ps -o pid= --ppid "$1" 2>/dev/null); do
		ps -o rss= -p "$p" 2>/dev/null || true
		tree_rss "$p"
	done
}

stop_sshd() {
	[ -n "$sshd_dir" ] || return 0
	"$root/scripts/sshd.sh" stop "$sshd_dir" || log "sshd.sh stop failed (its messages above)"
	sshd_dir=""
	ssh_ctx=""
}

# remote CMD...: CMD in the target's project folder over ssh, with the project's environment
# (what an admin's shell there would have from the deployment's .env and profile).
remote() {
	local cmd
	cmd="cd $(printf '%q' "$stack") && export COMPOSE_PROJECT_NAME=$name ECHO_MUSIC_DIR=$(printf '%q' "$work/music") ECHOBACKUP_PG_IMAGE=$(printf '%q' "$image") COMPOSE_ANSI=never NO_COLOR=1 &&"
	ssh -l root "$ssh_addr" "$cmd $*"
}

stop_engine2() {
	stop_sshd # first: the engine's namespace holds it
	[ -n "$eng2_dir" ] || return 0
	log "stopping the second engine $eng2_ctx"
	"$root/scripts/engine2.sh" stop "$eng2_dir" || log "engine2.sh stop failed (its messages above)"
	eng2_dir=""
	eng2_ctx=""
}

# Its phases come from what it prints: "Migrated to context "X" in 1m2s (save and verify 40s,
# restore 22s)", and progress lines "[ 12.3s] stopping echo" (seconds since it started).
our_migrate() {
	local t0 before after summary archive
	log "our migrate: docker echobackup migrate --to-context $ssh_ctx (ssh://root@$ssh_addr)"
	before="$(fingerprint)"
	sync
	t0=$(now)
	remote_rss_sampler &
	local sampler=$!
	run_ours migrate -- docker echobackup migrate --to-context "$ssh_ctx" || { kill "$sampler" 2>/dev/null; return 1; }
	R[omigrate_s]=$(since "$t0")
	kill "$sampler" 2>/dev/null || true
	wait "$sampler" 2>/dev/null || true
	R[omigrate_remote_rss]=$(sort -n "$work/remote-rss" 2>/dev/null | tail -n 1 | awk '{ printf "%.1f", $1 / 1024 }')
	R[omigrate_rss]=$(max_rss_mb "$work/migrate.time")
	summary="$(grep -m1 '^Migrated to context' "$work/migrate.out" || true)"
	R[omigrate_save_s]=$(go_seconds "$(sed -n 's/.*(save and verify \([^,]*\),.*/\1/p' <<<"$summary")")
	R[omigrate_restore_s]=$(go_seconds "$(sed -n 's/.*, restore \([^)]*\)).*/\1/p' <<<"$summary")")
	# From "stopping …" to "services are back": the app services were down on the target.
	R[omigrate_down_s]=$(awk -F'[][s]' '/\] stopping / && a == "" { a = $2 } /\] services are back/ { b = $2 }
		END { if (a != "" && b != "") printf "%.1f", b - a; else printf "-" }' "$work/migrate.err")
	R[omigrate_timeline]="$(sed 's/^/  /' "$work/migrate.err")"
	archive="$(sed -n 's/^The backup taken here is //p' "$work/migrate.out")"
	[ -f "$archive" ] && R[omigrate_archive]=$(apparent "$archive")
	# Not timed: the target must run the deployment with the data the source holds.
	wait_db "$eng2_ctx"
	after="$(fingerprint "$eng2_ctx" "$(target_stack)")"
	if [ "$before" != "$after" ]; then
		failed=1
		R[omigrate_same]="NO"
		log "FAILED: after migrate the target's data differs from the source's:"
		diff <(echo "$before") <(echo "$after") >&2 || true
		return 1
	fi
	R[omigrate_same]="yes"
	log "our migrate: ${R[omigrate_s]}s (save and verify ${R[omigrate_save_s]}s, restore ${R[omigrate_restore_s]}s)," \
		"peak RSS ${R[omigrate_rss]} MB; the target's fingerprint equals the source's"
}

# The manual way of Echo's page, with what manual_save left here, over the same ssh server as
# our migrate: scp backup.sql and data.tar.gz to the target's project folder, then over ssh:
# compose up -d postgres, psql < backup.sql, tar xzf, compose up -d. Into an empty target: after
# our migrate it is emptied first (not timed). Its whole time adds the manual save's.
manual_migrate() {
	local t0 t1 tdir before after
	tdir="$(target_stack)"
	log "manual migrate: emptying the target (not timed)"
	before="$(fingerprint)"
	(docker --context "$eng2_ctx" compose down -v --timeout 1) >"$work/mmigrate-compose.log" 2>&1
	rm -rf "$tdir/data" "$tdir/backups"
	# The page assumes the new server has the deployment's compose files already.
	scp -q compose.yaml compose.override.yaml "root@$ssh_addr:$stack/"
	log "manual migrate: scp backup.sql data-backup.tar.gz root@$ssh_addr:$stack/; over ssh: up -d postgres; psql < backup.sql; tar xzf; up -d"
	sync
	t0=$(now)
	scp -q backup.sql data-backup.tar.gz "root@$ssh_addr:$stack/"
	R[mmigrate_copy_s]=$(since "$t0")
	t1=$(now)
	remote docker compose up -d postgres >>"$work/mmigrate-compose.log" 2>&1
	# What the page leaves out: PostgreSQL must accept connections before psql.
	remote "for i in \$(seq 600); do docker exec $pg psql -X -h 127.0.0.1 -U echo -d echo -Atc 'select 1' >/dev/null 2>&1 && exit 0; sleep 0.2; done; exit 1" ||
		die "PostgreSQL on the target did not answer within 2 minutes"
	remote "docker exec -i $pg psql -q -U echo echo < backup.sql" >/dev/null 2>"$work/mmigrate-psql.err"
	remote tar xzf data-backup.tar.gz
	remote docker compose up -d >>"$work/mmigrate-compose.log" 2>&1
	R[mmigrate_restore_s]=$(since "$t1")
	R[mmigrate_there_s]=$(since "$t0")
	R[mmigrate_s]=$(calc "${R[msave_s]} + ${R[mmigrate_there_s]}")
	R[mmigrate_errors]=$(grep -c 'ERROR:' "$work/mmigrate-psql.err" || true)
	after="$(fingerprint "$eng2_ctx" "$tdir")"
	R[mmigrate_same]=yes
	[ "$before" = "$after" ] || R[mmigrate_same]=NO
	log "manual migrate: ${R[mmigrate_s]}s with the manual save, ${R[mmigrate_errors]} ERROR lines; same data on the target: ${R[mmigrate_same]}"
}

# --- report ------------------------------------------------------------------------------------

report() {
	local r mem_gib
	mem_gib=$(awk '/^MemTotal/ { printf "%.1f", $2 / 1048576 }' /proc/meminfo)
	row() { printf "%-34s %12s %12s %12s  %s\n" "$@"; }
	# target VALUE OP LIMIT: the target and whether it was met.
	target() { echo "$2 $3  $(verdict "$1" "$2" "$3")"; }
	echo
	echo "== echo-backup benchmark, scale $scale ($(date -u +%Y-%m-%dT%H:%M:%SZ)) =="
	echo "machine:  $(nproc) CPUs, $mem_gib GiB RAM, $(uname -sr), Docker Engine $(docker version --format '{{.Server.Version}}')," \
		"storage driver $(docker info --format '{{.Driver}}')"
	echo "data set: database $(mb "${R[db_bytes]}") MB (pg_database_size; ${R[plays]} plays, ${R[tracks]} tracks, ${R[ratings]} ratings)," \
		"./data $(mb "${R[files_bytes]}") MB in ${R[files]} files; generated in ${R[gen_s]}s"
	echo
	row "" "manual" "echo-backup" "ours/manual" "target"
	r=$(ratio "${R[osave_s]:-}" "${R[msave_s]}")
	row "save time (s)" "${R[msave_s]}" "${R[osave_s]:-FAILED}" "$r" "$(target "$r" "<=" $TARGET_SAVE_TIME)"
	row "  pg_dump > backup.sql (s)" "${R[msave_db_s]}" "" "" ""
	row "  tar czf ./data (s)" "${R[msave_files_s]}" "" "" ""
	r=$(ratio "${R[o_apparent]:-}" "${R[m_apparent]}")
	row "backup size, apparent (MB)" "$(mb "${R[m_apparent]}")" "$(mb "${R[o_apparent]:-0}")" "$r" "$(target "$r" "<=" $TARGET_SIZE)"
	r=$(ratio "${R[o_disk]:-}" "${R[m_disk]}")
	row "backup size, du on disk (MB)" "$(mb "${R[m_disk]}")" "$(mb "${R[o_disk]:-0}")" "$r" ""
	row "save peak RSS (MB)" "" "${R[osave_rss]:--}" "" "$(target "${R[osave_rss]:--}" "<" $TARGET_SAVE_RSS_MB)"
	if [ "$skip_restore" = 1 ]; then
		echo "(restore skipped: --skip-restore)"
	elif [ -n "${R[mrestore_s]:-}" ]; then
		r=$(ratio "${R[orestore_s]:-}" "${R[mrestore_s]}")
		row "restore time, whole (s)" "${R[mrestore_s]}" "${R[orestore_s]:-FAILED}" "$r" "$(target "$r" "<=" $TARGET_RESTORE_TIME)"
		r=$(ratio "${R[downtime_s]:-}" "${R[mrestore_s]}")
		row "services down (s)" "${R[mrestore_s]}" "${R[downtime_s]:-FAILED}" "$r" "$(target "$r" "<=" $TARGET_DOWNTIME)"
		row "restore peak RSS (MB)" "" "${R[orestore_rss]:--}" "" ""
		if [ -n "${R[mfresh_s]:-}" ]; then
			r=$(ratio "${R[orestore_s]:-}" "${R[mfresh_s]}")
			row "restore, whole, vs working manual" "${R[mfresh_s]}" "${R[orestore_s]:-FAILED}" "$r" "(down -v first, so psql reloads)"
			r=$(ratio "${R[downtime_s]:-}" "${R[mfresh_s]}")
			row "services down vs working manual" "${R[mfresh_s]}" "${R[downtime_s]:-FAILED}" "$r" ""
		fi
		echo
		echo "manual restore: ${R[mrestore_errors]} ERROR lines from psql (the docs restore into the still-full database);"
		echo "  ${R[mrestore_copies]} of the dump's ${R[dump_copies]} tables were reloaded (a COPY stops at the first existing row);"
		echo "  its time includes waiting for PostgreSQL to accept connections, which the docs leave out."
		echo "our restore: printed 'services down for ${R[downtime_raw]:--}'; its whole time includes the safety backup, saved from the set-aside copies once the services are back."
	fi
	if [ "$migrate" = 1 ]; then
		echo
		row "migrate over ssh to a 2nd engine" "manual" "echo-backup" "ours/manual" "target"
		r=$(ratio "${R[omigrate_s]:-}" "${R[mmigrate_s]:-}")
		row "migrate time, whole (s)" "${R[mmigrate_s]:--}" "${R[omigrate_s]:-FAILED}" "$r" "$(target "$r" "<=" $TARGET_MIGRATE_TIME)"
		row "  save (+ verify) here (s)" "${R[msave_s]}" "${R[omigrate_save_s]:--}" "" ""
		row "  copy, scp (s)" "${R[mmigrate_copy_s]:--}" "(streamed)" "" ""
		row "  restore there (s)" "${R[mmigrate_restore_s]:--}" "${R[omigrate_restore_s]:--}" "" ""
		row "  services down there (s)" "" "${R[omigrate_down_s]:--}" "" ""
		row "migrate archive, apparent (MB)" "$(mb "${R[m_apparent]}")" "$(mb "${R[omigrate_archive]:-0}")" "" ""
		row "migrate peak RSS here (MB)" "" "${R[omigrate_rss]:--}" "" "<= 100  $(verdict "${R[omigrate_rss]:--}" "<=" 100)"
		row "  remote ssh side, one process" "" "${R[omigrate_remote_rss]:--}" "" "<= 100  $(verdict "${R[omigrate_remote_rss]:--}" "<=" 100)"
		row "target's data = source's" "${R[mmigrate_same]:--}" "${R[omigrate_same]:--}" "" "(fingerprint: row counts, files)"
		echo
		echo "second engine: up in ${R[eng2_up_s]:--}s, images copied in ${R[eng2_images_s]:--}s (neither timed)."
		echo "both over ssh://root@${ssh_addr:-?} (scripts/sshd.sh: OpenSSH in the target's namespace, over a veth pair)."
		echo "manual migrate: the manual save, scp of its two files into the target's folder, then over ssh:"
		echo "  up -d postgres, psql < backup.sql (${R[mmigrate_errors]:--} ERROR lines), tar xzf, up -d, into an empty target."
		if [ -n "${R[omigrate_timeline]:-}" ]; then
			echo "our migrate's progress lines (seconds since it started):"
			echo "${R[omigrate_timeline]}"
		fi
	fi
	if [ "$repo" = 1 ]; then
		report_repo
	fi
	echo "manual: backup.sql + data-backup.tar.gz; ours: $(basename "${R[archive]:-none}")."
	echo "peak RSS: /usr/bin/time -v's maximum resident set size, i.e. of the largest single process"
	echo "  (the plugin, unless below the docker CLI's own ~25 MB)."
}

# The --repo rows: each against its own baseline, named in the row.
report_repo() {
	local r data added pct folder17 same=-
	data=$((R[db_bytes] + R[files_bytes]))
	echo
	row "repository (--repo, local folder)" "baseline" "repository" "ratio" "target"
	r=$(ratio "${R[rsave_s]:-}" "${R[osave_s]:-}")
	row "first save vs our folder save (s)" "${R[osave_s]:--}" "${R[rsave_s]:-FAILED}" "$r" "$(target "$r" "<=" $TARGET_REPO_SAVE_TIME)"
	row "first save peak RSS (MB)" "${R[osave_rss]:--}" "${R[rsave_rss]:--}" "" "$(target "${R[rsave_rss]:--}" "<=" $TARGET_REPO_RSS_MB)"
	r=$(ratio "${R[rsave_stored]:-}" "${R[o_apparent]:-}")
	row "first save stored vs archive (MB)" "$(mb "${R[o_apparent]:-0}")" "$(mb "${R[rsave_stored]:-0}")" "$r" ""
	r=$(ratio "${R[resave1_s]:-}" "${R[msave_s]}")
	row "re-save after a day vs manual (s)" "${R[msave_s]}" "${R[resave1_s]:-FAILED}" "$r" "$(target "$r" "<=" $TARGET_RESAVE_TIME)"
	r=$(ratio "${R[resave_median_s]:-}" "${R[msave_s]}")
	row "  median of $((REPO_BACKUPS - 1)) re-saves (s)" "${R[msave_s]}" "${R[resave_median_s]:--}" "$r" "(slowest ${R[resave_max_s]:--}s)"
	row "  re-save peak RSS (MB)" "" "${R[resave1_rss]:--}" "" ""
	added=${R[resave1_added]:-}
	pct=-
	[ -z "$added" ] || pct=$(calc "100 * $added / $data")
	row "re-save added, % of data (MB)" "$(mb "$data")" "$(mb "${added:-0}")" "$pct%" "$(target "$pct" "<=" "$TARGET_RESAVE_PCT%")"
	folder17=$((REPO_BACKUPS * ${R[o_apparent]:-0}))
	r=$(ratio "${R[r17_stored]:-}" "${R[rsave_stored]:-}")
	row "$REPO_BACKUPS backups vs one full (MB)" "$(mb "${R[rsave_stored]:-0}")" "$(mb "${R[r17_stored]:-0}")" "$r" "$(target "$r" "<=" $TARGET_REPO_17)"
	r=$(ratio "${R[r17_stored]:-}" "$folder17")
	row "  vs $REPO_BACKUPS archives in a folder (MB)" "$(mb "$folder17")" "$(mb "${R[r17_stored]:-0}")" "$r" "(${REPO_BACKUPS} x the archive, computed)"
	if [ "$skip_restore" = 0 ]; then
		r=$(ratio "${R[rrestore_s]:-}" "${R[frestore_s]:-}")
		row "restore vs ours from a folder (s)" "${R[frestore_s]:--}" "${R[rrestore_s]:-FAILED}" "$r" "$(target "$r" "<=" $TARGET_REPO_RESTORE_TIME)"
		row "  services down (s)" "$(go_seconds "${R[frestore_down_raw]:-}")" "$(go_seconds "${R[rrestore_down_raw]:-}")" "" ""
		row "restore peak RSS (MB)" "${R[frestore_rss]:--}" "${R[rrestore_rss]:--}" "" "$(target "${R[rrestore_rss]:--}" "<=" $TARGET_REPO_RSS_MB)"
		# Timed but no R[rrestore_same]: it restored other data.
		[ -z "${R[rrestore_s]:-}" ] || same=${R[rrestore_same]:-NO}
		row "restored data = saved" "" "$same" "" "(fingerprint: row counts, files)"
	fi
	echo
	echo "repository: $repo_dir; after $REPO_BACKUPS saves ${R[r17_snapshots]:--} snapshots, $(mb "${R[r17_logical]:-0}") MB backed up," \
		"stored $(mb "${R[r17_stored]:-0}") MB (du -sb $(mb "${R[r17_du]:-0}") MB; dedup ratio $(calc "${R[r17_dedup]:-0}")x); first save: du -sb $(mb "${R[rsave_du]:-0}") MB."
	echo "a day of change: scripts/bench-day.sql (5000 plays, 3500 ratings new or changed, playlist edits) and $DAY_COVERS new covers;"
	echo "  the covers of all $((REPO_BACKUPS - 1)) days: $(mb "${R[day_cover_bytes]:-0}") MB. Stored bytes: repo status storedBytes."
	if [ "$skip_restore" = 0 ]; then
		echo "restores: of the last state, from the repository and from a folder archive of it ($(mb "${R[final_archive]:-0}") MB, saved untimed);"
		echo "  the first restore row above (${R[orestore_s]:--}s) restored the data set before the days of change."
	fi
}

# --- cleanup -----------------------------------------------------------------------------------

# Removes what this run created, by project name: the stack (containers, networks, volumes),
# anything labelled with the project by compose or echo-backup, and the temp folder.
cleanup() {
	local rc=$? ids label
	cd /
	[ -n "$work" ] || return 0
	if [ "$keep" = 1 ] && [ -n "$name" ]; then
		log "--keep: stack $name left running in $stack. Use it with:"
		log "  cd $stack && export DOCKER_CONFIG=$work/docker-config COMPOSE_PROJECT_NAME=$name ECHO_MUSIC_DIR=$work/music ECHOBACKUP_PG_IMAGE=$image"
		if [ -n "$eng2_dir" ]; then
			log "The second engine is context $eng2_ctx (its project folder: $(target_stack)); stop it first with:"
			[ -z "$sshd_dir" ] || log "  DOCKER_CONFIG=$work/docker-config $root/scripts/sshd.sh stop $sshd_dir   (its ssh server, context $ssh_ctx, first)"
			log "  DOCKER_CONFIG=$work/docker-config $root/scripts/engine2.sh stop $eng2_dir"
		fi
		log "Remove it with: (cd $stack && docker compose down -v --timeout 1) && rm -rf $work"
		return 0
	fi
	# First: it removes its context from DOCKER_CONFIG, which is in $work.
	stop_engine2
	if [ -n "$name" ]; then
		log "removing stack $name"
		if [ -d "$stack" ]; then
			(cd "$stack" && docker compose down -v --remove-orphans --timeout 1) >/dev/null 2>&1 || true
		fi
		for label in com.docker.compose.project com.echobackup.project; do
			ids="$(docker ps -aq --filter "label=$label=$name")"
			[ -z "$ids" ] || docker rm -f -v $ids >/dev/null 2>&1 || true
			ids="$(docker volume ls -q --filter "label=$label=$name")"
			[ -z "$ids" ] || docker volume rm -f $ids >/dev/null 2>&1 || true
			ids="$(docker network ls -q --filter "label=$label=$name")"
			[ -z "$ids" ] || docker network rm $ids >/dev/null 2>&1 || true
		done
		# The name filter matches substrings: keep real prefixes only.
		ids="$(docker volume ls -q --filter "name=${name}_" | grep "^${name}_" || true)"
		[ -z "$ids" ] || docker volume rm -f $ids >/dev/null 2>&1 || true
	fi
	rm -rf --one-file-system "$work"
	return "$rc"
}

# --- main --------------------------------------------------------------------------------------

main() {
	parse_args "$@"
	[ "$(id -u)" = 0 ] || die "run as root: the manual restore (tar xzf) must give ./data back to uid 1001, as Echo's admins do"
	command -v /usr/bin/time >/dev/null || die "/usr/bin/time is missing (Debian: apt-get install time)"
	[ "$repo" = 0 ] || command -v jq >/dev/null || die "--repo reads repo status --format json with jq (Debian: apt-get install jq)"

	work="$(mktemp -d "${TMPDIR:-/tmp}/ebbench.XXXXXX")"
	trap cleanup EXIT
	trap 'exit 130' INT
	trap 'exit 143' TERM
	isolate_env # first, so that no docker command below reads or writes ~/.docker

	# shellcheck source=scripts/engine.sh
	. "$root/scripts/engine.sh" || die "no Docker engine"
	image="$("$root/scripts/pg-image.sh")"
	check_space
	install_plugins
	create_stack
	generate_data
	warm_up

	manual_save
	our_save || true
	if [ "$migrate" = 1 ]; then
		start_engine2
		start_sshd
		our_migrate || true
		manual_migrate
		# Now, not at exit: the restores below should not share the machine with it.
		[ "$keep" = 1 ] || stop_engine2
	fi
	if [ "$skip_restore" = 0 ]; then
		manual_restore
		if [ -n "${R[archive]:-}" ]; then
			our_restore || true
		fi
		manual_restore_fresh
	fi
	if [ "$repo" = 1 ]; then
		repo_steps || true
	fi
	report
	if [ "$failed" = 1 ]; then
		log "FAILED: a docker echobackup command failed (see above)"
		exit 1
	fi
}

main "$@"
