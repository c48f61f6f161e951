#!/usr/bin/env bash
# Make sure a local PostgreSQL image exists on the Docker engine and print its tag.
#
# Order of preference:
#   1. an image already tagged $ECHOBACKUP_PG_IMAGE (built once, then reused);
#   2. postgres:16 from a registry, if one is reachable;
#   3. build one from Debian bookworm with debootstrap + `docker import`.
#
# The built image mimics the official postgres image's entrypoint, and also
# carries redis-server/redis-cli so one image can stand in for every service
# of the Echo compose stack in tests. Only the tag goes to stdout; progress
# goes to stderr so callers can do: img=$(scripts/pg-image.sh).
set -euo pipefail

TAG="${ECHOBACKUP_PG_IMAGE:-echobackup-test/postgres:local}"
SUITE=bookworm
PACKAGES=postgresql,redis-server,procps,zstd,ca-certificates

log() { printf 'pg-image: %s\n' "$*" >&2; }

# 1. Reuse: building takes minutes, so tests share one image by tag.
if docker image inspect "$TAG" >/dev/null 2>&1; then
	echo "$TAG"
	exit 0
fi

# `go test ./...` runs packages in parallel: let one caller build while the
# others wait, then they find the tag.
exec 9>"${TMPDIR:-/tmp}/echobackup-pg-image.lock"
flock 9
if docker image inspect "$TAG" >/dev/null 2>&1; then
	echo "$TAG"
	exit 0
fi

# 2. A registry may be reachable on other machines; don't hang if it isn't.
if timeout 20 docker pull postgres:16 >&2 2>&1; then
	echo postgres:16
	exit 0
fi
log "no local $TAG and postgres:16 cannot be pulled; building $TAG from Debian $SUITE"

# Print the Debian mirror this machine already uses for $SUITE, so the script
# works wherever apt works (no host name is baked in here). Only the main
# archive counts: not debian-security, not third-party repos.
find_debian_mirror() {
	local f
	# deb822 format (*.sources): stanzas separated by blank lines.
	for f in /etc/apt/sources.list.d/*.sources; do
		[ -e "$f" ] || continue
		awk -v suite="$SUITE" '
			function flush(   n, i, u, x) {
				if (enabled != "no" && (" " types " ") ~ / deb / && (" " suites " ") ~ (" " suite " ")) {
					n = split(uris, u, " ")
					for (i = 1; i <= n; i++) {
						x = u[i]; sub(/\/+$/, "", x)
						if (x ~ /^https?:\/\/.*\/debian$/) { print x; found = 1; exit }
					}
				}
				types = suites = uris = enabled = ""
			}
			/^[ \t]*#/ { next }
			/^[ \t]*$/ { flush(); next }
			{
				key = tolower($1); sub(/:$/, "", key); $1 = ""; val = $0; sub(/^ +/, "", val)
				if (key == "types") types = val
				else if (key == "uris") uris = val
				else if (key == "suites") suites = val
				else if (key == "enabled") enabled = tolower(val)
			}
			END { if (!found) flush() }
		' "$f"
	done
	# One-line format: deb [options] URI suite components...
	for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
		[ -e "$f" ] || continue
		awk -v suite="$SUITE" '
			$1 == "deb" {
				i = 2
				if ($2 ~ /^\[/) { while (i <= NF && $i !~ /\]$/) i++; i++ }
				uri = $i; sub(/\/+$/, "", uri)
				if ($(i + 1) == suite && uri ~ /^https?:\/\/.*\/debian$/) { print uri; exit }
			}
		' "$f"
	done
}

mirror="$(find_debian_mirror)"
mirror="${mirror%%$'\n'*}"
if [ -z "$mirror" ]; then
	log "error: no '$SUITE' entry for a .../debian mirror found in /etc/apt/sources.list{,.d/*}"
	exit 1
fi
log "using Debian mirror $mirror"

# debootstrap: try the cached package lists first; refresh only if that fails.
if ! command -v debootstrap >/dev/null 2>&1; then
	log "installing debootstrap"
	export DEBIAN_FRONTEND=noninteractive
	if ! apt-get install -y --no-install-recommends debootstrap >&2; then
		apt-get update >&2
		apt-get install -y --no-install-recommends debootstrap >&2
	fi
fi

workdir="$(mktemp -d "${TMPDIR:-/tmp}/pg-image.XXXXXX")"
rootfs="$workdir/rootfs"

cleanup() {
	[ -d "$workdir" ] || return 0
	# debootstrap mounts proc/sys inside the target; if it died half-way those
	# may still be mounted, and rm -rf must never walk into the host's /proc.
	awk -v p="$workdir/" 'index($2, p) == 1 { print $2 }' /proc/mounts | sort -r |
		while read -r m; do umount -l "$m" || true; done
	rm -rf --one-file-system "$workdir"
}
trap cleanup EXIT
# Make Ctrl-C / kill run the EXIT trap too. (A kill aimed at this script alone
# takes effect once the running step, e.g. debootstrap, has finished.)
trap 'exit 130' INT
trap 'exit 143' TERM

start=$SECONDS
log "debootstrap $SUITE into $rootfs (takes a few minutes)"
debootstrap --variant=minbase --include="$PACKAGES" "$SUITE" "$rootfs" "$mirror" >&2

# Debian's packaging creates a cluster under /etc/postgresql + /var/lib/postgresql/N/main.
# We use initdb into $PGDATA instead (like the official image), so drop it.
pg_major="$(ls "$rootfs/usr/lib/postgresql" | sort -n | tail -n1)"
[ -x "$rootfs/usr/lib/postgresql/$pg_major/bin/postgres" ] || {
	log "error: no postgres binary under $rootfs/usr/lib/postgresql"
	exit 1
}
rm -rf "$rootfs/etc/postgresql/$pg_major" "$rootfs/var/lib/postgresql/$pg_major"

# The socket dir (/var/run -> /run) must exist and be writable by postgres.
mkdir -p "$rootfs/run/postgresql"
chroot "$rootfs" chown postgres:postgres /run/postgresql
chmod 3775 "$rootfs/run/postgresql"

# Entrypoint modelled on the official image's docker-entrypoint.sh.
cat >"$rootfs/usr/local/bin/docker-entrypoint.sh" <<'ENTRYPOINT'
#!/usr/bin/env bash
# Stand-in for the official postgres image's entrypoint (same env variables).
set -Eeo pipefail

# file_env VAR [default]: also accept VAR_FILE (docker secrets), like upstream.
file_env() {
	local var="$1" fileVar="${1}_FILE" def="${2:-}" val
	if [ -n "${!var:-}" ] && [ -n "${!fileVar:-}" ]; then
		echo >&2 "error: both $var and $fileVar are set (but are exclusive)"
		exit 1
	fi
	val="$def"
	if [ -n "${!var:-}" ]; then
		val="${!var}"
	elif [ -n "${!fileVar:-}" ]; then
		val="$(<"${!fileVar}")"
	fi
	export "$var"="$val"
	unset "$fileVar"
}

# `docker run IMAGE -c foo=bar` means "postgres with these options".
if [ "${1:0:1}" = '-' ]; then
	set -- postgres "$@"
fi

# Anything else (redis-server, sleep, sh, pg_dump...) runs as-is, so the same
# image can play every service of a compose stack.
if [ "$1" != 'postgres' ]; then
	exec "$@"
fi

export PGDATA="${PGDATA:-/var/lib/postgresql/data}"

# As root: prepare directories (volumes arrive root-owned), then drop privileges.
if [ "$(id -u)" = '0' ]; then
	mkdir -p "$PGDATA" /var/run/postgresql
	chmod 0700 "$PGDATA"
	chmod 3775 /var/run/postgresql
	find "$PGDATA" \! -user postgres -exec chown postgres:postgres '{}' +
	chown postgres:postgres /var/run/postgresql
	export HOME=/var/lib/postgresql
	exec setpriv --reuid=postgres --regid=postgres --init-groups "${BASH_SOURCE[0]}" "$@"
fi

file_env POSTGRES_PASSWORD
file_env POSTGRES_USER postgres
file_env POSTGRES_DB "$POSTGRES_USER"
file_env POSTGRES_INITDB_ARGS
: "${POSTGRES_HOST_AUTH_METHOD:=scram-sha-256}"

# An existing cluster is reused untouched (container restart, mounted volume).
if [ -s "$PGDATA/PG_VERSION" ]; then
	echo 'PostgreSQL Database directory appears to contain a database; Skipping initialization'
	exec "$@"
fi

if [ -z "$POSTGRES_PASSWORD" ] && [ "$POSTGRES_HOST_AUTH_METHOD" != 'trust' ]; then
	cat >&2 <<-'EOE'
		Error: Database is uninitialized and superuser password is not specified.
		       You must specify POSTGRES_PASSWORD to a non-empty value for the
		       superuser. For example, "-e POSTGRES_PASSWORD=password" on "docker run".

		       You may also use "POSTGRES_HOST_AUTH_METHOD=trust" to allow all
		       connections without a password. This is *not* recommended.
	EOE
	exit 1
fi

# initdb's defaults trust the local socket and loopback; remote hosts get a
# password rule appended below -- exactly what the official image does.
# eval so that quoting inside POSTGRES_INITDB_ARGS is honoured (upstream too).
if [ -n "$POSTGRES_PASSWORD" ]; then
	eval 'initdb --username="$POSTGRES_USER" --pwfile=<(printf "%s\n" "$POSTGRES_PASSWORD") '"$POSTGRES_INITDB_ARGS"
else
	eval 'initdb --username="$POSTGRES_USER" '"$POSTGRES_INITDB_ARGS"
fi
printf '\nhost all all all %s\n' "$POSTGRES_HOST_AUTH_METHOD" >>"$PGDATA/pg_hba.conf"
printf "\nlisten_addresses = '*'\n" >>"$PGDATA/postgresql.conf"

# Setup happens on a socket-only server, so clients can't connect half-way.
export PGPASSWORD="${PGPASSWORD:-$POSTGRES_PASSWORD}"
PGUSER="$POSTGRES_USER" pg_ctl -D "$PGDATA" -o "-c listen_addresses='' -p ${PGPORT:-5432}" -w start

psql_cmd=(psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --no-password --no-psqlrc)

if [ "$POSTGRES_DB" != 'postgres' ]; then
	exists="$("${psql_cmd[@]}" --dbname postgres --set db="$POSTGRES_DB" --tuples-only <<-'EOSQL'
		SELECT 1 FROM pg_database WHERE datname = :'db';
	EOSQL
	)"
	if [ -z "${exists//[[:space:]]/}" ]; then
		"${psql_cmd[@]}" --dbname postgres --set db="$POSTGRES_DB" <<-'EOSQL'
			CREATE DATABASE :"db";
		EOSQL
	fi
fi

psql_cmd+=(--dbname "$POSTGRES_DB")
for f in /docker-entrypoint-initdb.d/*; do
	[ -e "$f" ] || continue
	case "$f" in
	*.sh)
		# executable scripts run in a child; others are sourced (upstream rule)
		if [ -x "$f" ]; then
			echo "$0: running $f"
			"$f"
		else
			echo "$0: sourcing $f"
			. "$f"
		fi
		;;
	*.sql) echo "$0: running $f"; "${psql_cmd[@]}" -f "$f" ;;
	*.sql.gz) echo "$0: running $f"; gunzip -c "$f" | "${psql_cmd[@]}" ;;
	*.sql.xz) echo "$0: running $f"; xzcat "$f" | "${psql_cmd[@]}" ;;
	*.sql.zst) echo "$0: running $f"; zstd -dc "$f" | "${psql_cmd[@]}" ;;
	*) echo "$0: ignoring $f" ;;
	esac
done

pg_ctl -D "$PGDATA" -m fast -w stop
unset PGPASSWORD
echo 'PostgreSQL init process complete; ready for start up.'

exec "$@"
ENTRYPOINT
chmod 0755 "$rootfs/usr/local/bin/docker-entrypoint.sh"

# Slim the image like Debian's -slim images: caches, docs and message
# translations (LANG is C.UTF-8) are dead weight in a test image.
chroot "$rootfs" apt-get clean
rm -rf "$rootfs"/var/lib/apt/lists/* "$rootfs"/var/cache/apt/*.bin \
	"$rootfs"/usr/share/doc/* "$rootfs"/usr/share/man/* "$rootfs"/usr/share/info/* \
	"$rootfs"/usr/share/locale/* \
	"$rootfs"/var/log/*.log "$rootfs"/var/cache/debconf/*-old
# Docker bind-mounts these at run time; don't ship the build host's copies.
: >"$rootfs/etc/resolv.conf"
: >"$rootfs/etc/hostname"

log "importing rootfs as $TAG (PostgreSQL $pg_major)"
base_id="$(tar -C "$rootfs" --numeric-owner --exclude='./dev/*' --exclude='./proc/*' --exclude='./sys/*' -c . |
	docker import \
		--change "ENV PATH=/usr/lib/postgresql/$pg_major/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin" \
		--change "ENV PG_MAJOR=$pg_major" \
		--change 'ENV PGDATA=/var/lib/postgresql/data' \
		--change 'ENV LANG=C.UTF-8' \
		--change 'ENTRYPOINT ["docker-entrypoint.sh"]' \
		--change 'CMD ["postgres"]' \
		--change 'EXPOSE 5432' \
		--change 'LABEL com.echobackup.test=1' \
		--message "echo-backup test image: Debian $SUITE + PostgreSQL $pg_major + redis" \
		-)"

# Engine 20.10 rejects STOPSIGNAL in `docker import --change`, so add it with a
# one-line build on top (no context, no RUN: nothing is pulled). SIGINT means
# postgres "fast" shutdown, as upstream; SIGTERM would wait for clients.
# Classic builder, because the buildx plugin may be absent.
printf 'FROM %s\nSTOPSIGNAL SIGINT\n' "$base_id" |
	DOCKER_BUILDKIT=0 docker build --quiet --tag "$TAG" - >&2

log "built $TAG in $((SECONDS - start))s"
echo "$TAG"
