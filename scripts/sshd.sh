#!/usr/bin/env bash
# An OpenSSH server in front of a second engine (scripts/engine2.sh), so that it is reached the
# way people reach another host: `docker context create newhost --docker host=ssh://root@ADDRESS`.
# The e2e tests of migrate over ssh and scripts/bench.sh --migrate use it.
#
#   scripts/sshd.sh start ENGINE2_DIR [--prefix P]
#   scripts/sshd.sh stop SSHD_DIR
#   scripts/sshd.sh install             only install openssh-server when it is missing
#
# start prints, on stdout, lines a shell can eval and a program can split at the first "=":
#   SSHD_DIR=/tmp/P1a2b3c4d              its folder; give it to stop
#   SSHD_ADDRESS=10.213.7.2              the server's address, inside the engine's namespace
#   SSHD_PATH=/tmp/P1a2b3c4d/bin         put it first in PATH: its ssh and scp carry the rig's
#                                        client config (key, known_hosts), ~/.ssh is never read
#   SSHD_LINK=ebs1a2b3c4d                the veth pair's host side (tc on it slows the link)
#   SSHD_CONTEXT=P1a2b3c4d               docker context host=ssh://root@SSHD_ADDRESS
#   SSHD_CONTEXT_SILENT=P1a2b3c4d-silent     ssh://root@ an address of the subnet nobody has
#   SSHD_CONTEXT_REFUSED=P1a2b3c4d-refused   ssh://root@ an address where the client offers a
#                                            key the server does not know
#   SSHD_CONTEXT_NODOCKER=P1a2b3c4d-nodocker ssh://root@ an address where the remote shell's
#                                            PATH has no docker CLI
# The contexts are made in $DOCKER_CONFIG (or ~/.docker).
#
# The server is Debian's openssh-server (installed with apt-get when missing, its service never
# started), run as its own sshd -D with a config, host key and authorized key of its own, in the
# engine's network namespace (and, with engine2.sh --private, its mount namespace: scp lands in
# the target's own folders). A veth pair joins it to the host on a /29 of 10.213.N.0 that no
# route or address here overlaps: .1 is the host side; the server listens on .2, .3 and .4 only;
# .5 answers nobody. Key-only login as root (PasswordAuthentication no), an ed25519 key made in
# the folder; the remote shell gets DOCKER_HOST=the engine's socket and a DOCKER_CONFIG of its
# own, so `docker system dial-stdio` there reaches that engine and never the first one.
#
# stop removes everything start made, each step whatever the others did: the contexts, sshd and
# its sessions (by pid), the veth pair, the folder with its keys. Stopping twice, or a server
# half started, is fine. Stop it before the engine (engine2.sh stop removes the namespace).
#
# Needs root, ip, nsenter, ssh-keygen, the docker CLI, and apt-get when sshd is missing.
set -euo pipefail

log() { printf 'sshd: %s\n' "$*" >&2; }
die() {
	log "error: $*"
	exit 1
}
usage() { sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed '$d; s/^# \{0,1\}//'; }

SSHD=/usr/sbin/sshd
NET=10.213 # the /16 the rig's /29s are taken from

need() {
	local tool
	[ "$(id -u)" = 0 ] || die "an ssh server for a second engine needs root (network namespaces, veth, port 22)"
	for tool in "$@"; do
		command -v "$tool" >/dev/null 2>&1 || die "an ssh server for a second engine needs $tool in PATH"
	done
}

# install_sshd: Debian's openssh-server, without starting its service (policy-rc.d says no;
# a systemd-less machine has none to start, but a host's own sshd on port 22 must not appear).
install_sshd() {
	[ -x "$SSHD" ] && return 0
	command -v apt-get >/dev/null 2>&1 || die "no $SSHD and no apt-get to install openssh-server"
	log "installing Debian's openssh-server (apt-get)"
	local policy=/usr/sbin/policy-rc.d made=0 rc=0
	if [ ! -e "$policy" ]; then
		printf '#!/bin/sh\nexit 101\n' >"$policy" && chmod 755 "$policy" && made=1
	fi
	apt_install() { DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends openssh-server >/dev/null; }
	apt_install || { apt-get update >/dev/null && apt_install; } || rc=$?
	[ "$made" = 0 ] || rm -f "$policy"
	[ "$rc" = 0 ] && [ -x "$SSHD" ] || die "apt-get install openssh-server failed"
}

# --- start -------------------------------------------------------------------------------------

start() {
	local eng2="" prefix=eb-ssh- id dir netns engpid sock sub hostif out t0
	while [ $# -gt 0 ]; do
		case "$1" in
		--prefix) [ $# -ge 2 ] || die "--prefix needs a value"; prefix="$2"; shift ;;
		/*) [ -z "$eng2" ] || die "one ENGINE2_DIR only"; eng2="${1%/}" ;;
		*) usage >&2; die "unknown argument to start: $1" ;;
		esac
		shift
	done
	[ -n "$eng2" ] || die "start needs the ENGINE2_DIR that engine2.sh start printed"
	[[ "$prefix" =~ ^[a-z][a-z0-9-]{0,11}$ ]] || die "--prefix: lower-case letters, digits and '-', at most 12, not '$prefix'"
	need ip nsenter ssh-keygen docker flock
	netns="$(basename "$eng2")"
	sock="$eng2/docker.sock"
	[ -e "/var/run/netns/$netns" ] && [ -S "$sock" ] || die "$eng2 is not a running second engine (no namespace $netns or no $sock)"
	engpid="$(sed -n 's/^pid=//p' "$eng2/state" 2>/dev/null | tail -n 1)"
	[ -n "$engpid" ] && [ -e "/proc/$engpid/ns/mnt" ] || die "no dockerd pid in $eng2/state"
	install_sshd

	t0=$EPOCHREALTIME
	id="$prefix$(od -An -N4 -tx1 /dev/urandom | tr -d ' \n')"
	dir="${TMPDIR:-/tmp}/$id"
	mkdir -m 700 "$dir" || die "creating $dir"
	trap 'rc=$?; [ $rc -eq 0 ] || { log "start failed; cleaning up"; stop "$dir" >&2 || true; }; exit $rc' EXIT
	trap 'exit 130' INT
	trap 'exit 143' TERM
	hostif="ebs${id: -8}" # at most 15 bytes, and unique as the folder is
	printf 'docker_config=%s\nhostif=%s\n' "${DOCKER_CONFIG:-}" "$hostif" >"$dir/state"

	# One start at a time picks a subnet and claims it, so two rigs never share one.
	exec 9>/run/lock/echobackup-sshd.lock
	flock 9
	sub="$(free_subnet)" || die "no free /29 in $NET.0.0/16 (routes or addresses overlap them all)"
	ip link add "$hostif" type veth peer name ebssh0 netns "$netns"
	ip addr add "$sub.1/29" dev "$hostif"
	ip link set "$hostif" up
	flock -u 9
	exec 9>&-
	for i in 2 3 4; do
		ip -n "$netns" addr add "$sub.$i/29" dev ebssh0
	done
	ip -n "$netns" link set ebssh0 up

	keys "$dir" "$sub"
	server_config "$dir" "$sub" "unix://$sock" >"$dir/sshd_config"
	client_config "$dir" "$sub" >"$dir/ssh_config"
	mkdir -p "$dir/bin" "$dir/remote-docker-config"
	for i in ssh scp; do
		printf '#!/bin/sh\n# the rig'\''s client config, never ~/.ssh\nexec /usr/bin/%s -F %q "$@"\n' "$i" "$dir/ssh_config" >"$dir/bin/$i"
		chmod 755 "$dir/bin/$i"
	done
	# sshd's privilege separation folder (Debian's service makes it).
	mkdir -p -m 755 /run/sshd
	"$SSHD" -t -f "$dir/sshd_config" || die "sshd rejects its config ($dir/sshd_config)"
	# The engine's namespaces: its network, and its mount namespace (the host's, unless
	# engine2.sh --private). -D: sshd stays in the foreground, so $! is its pid.
	setsid nsenter --net="/var/run/netns/$netns" --mount="/proc/$engpid/ns/mnt" \
		"$SSHD" -D -f "$dir/sshd_config" -E "$dir/sshd.log" </dev/null >/dev/null 2>&1 &
	printf 'pid=%s\n' "$!" >>"$dir/state"
	wait_up "$!" "$dir" "$sub.2"

	make_context "$id" "ssh://root@$sub.2" "echo-backup ssh to a second engine ($dir)"
	make_context "$id-silent" "ssh://root@$sub.5" "echo-backup: an address nobody answers ($dir)"
	make_context "$id-refused" "ssh://root@$sub.3" "echo-backup: a key the server refuses ($dir)"
	make_context "$id-nodocker" "ssh://root@$sub.4" "echo-backup: a remote without the docker CLI ($dir)"
	out="$(PATH="$dir/bin:$PATH" DOCKER_HOST= DOCKER_CONTEXT= docker --context "$id" version --format '{{.Server.Version}}' 2>&1)" ||
		die "docker over ssh://root@$sub.2 does not answer: $out"
	log "ssh server $id on $sub.2 (engine $(basename "$eng2"), Docker $out over ssh) up in $(awk -v a="$t0" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.1f", b - a }')s"
	printf 'SSHD_DIR=%s\nSSHD_ADDRESS=%s\nSSHD_PATH=%s\nSSHD_LINK=%s\nSSHD_CONTEXT=%s\nSSHD_CONTEXT_SILENT=%s\nSSHD_CONTEXT_REFUSED=%s\nSSHD_CONTEXT_NODOCKER=%s\n' \
		"$dir" "$sub.2" "$dir/bin" "$hostif" "$id" "$id-silent" "$id-refused" "$id-nodocker"
	trap - EXIT INT TERM
}

# free_subnet: the first 10.213.N (a /29 at N.0) that no route and no address here overlaps.
free_subnet() {
	local n used
	used="$({ ip -4 route show table all; ip -4 -o addr show; } 2>/dev/null |
		grep -oE '([0-9]+\.){3}[0-9]+(/[0-9]+)?' || true)"
	for ((n = 0; n < 256; n++)); do
		overlaps "$NET.$n.0/29" "$used" || { echo "$NET.$n"; return 0; }
	done
	return 1
}

# overlaps CIDR LIST: one of LIST's addresses or prefixes (a bare address is a /32) meets CIDR.
overlaps() {
	local a p b q m
	a="$(ip2int "${1%/*}")" p="${1#*/}"
	while read -r b; do
		[ -n "$b" ] || continue
		q=32
		[[ "$b" == */* ]] && q="${b#*/}"
		b="$(ip2int "${b%/*}")"
		m=$((p < q ? p : q))
		[ "$m" -eq 0 ] && [ "$q" -eq 0 ] && continue # the default route meets everything; not a clash
		(((a >> (32 - m)) == (b >> (32 - m)))) && return 0
	done <<<"$2"
	return 1
}

ip2int() {
	local IFS=. o
	read -r -a o <<<"$1"
	echo $(((o[0] << 24) + (o[1] << 16) + (o[2] << 8) + o[3]))
}

# keys DIR SUB: the server's host key, the client's key (authorized), a second client key the
# server does not know, and the known_hosts that names the host key for every listening address.
keys() {
	local dir="$1" sub="$2" i
	ssh-keygen -q -t ed25519 -N '' -C "echo-backup rig host key" -f "$dir/ssh_host_ed25519_key"
	ssh-keygen -q -t ed25519 -N '' -C "echo-backup rig client" -f "$dir/id_ed25519"
	ssh-keygen -q -t ed25519 -N '' -C "echo-backup rig, not authorized" -f "$dir/refused_ed25519"
	cp "$dir/id_ed25519.pub" "$dir/authorized_keys"
	: >"$dir/known_hosts"
	for i in 2 3 4 5; do
		printf '%s %s\n' "$sub.$i" "$(cut -d' ' -f1,2 "$dir/ssh_host_ed25519_key.pub")" >>"$dir/known_hosts"
	done
}

# server_config DIR SUB HOST. Match blocks only for SetEnv: its first value wins, so a global one
# would hide the .4 address's PATH.
server_config() {
	local dir="$1" sub="$2" host="$3" env
	env="DOCKER_HOST=$host DOCKER_CONFIG=$dir/remote-docker-config DOCKER_CONTEXT="
	cat <<EOF
# echo-backup test rig (scripts/sshd.sh): nothing here is the machine's own sshd
ListenAddress $sub.2
ListenAddress $sub.3
ListenAddress $sub.4
Port 22
HostKey $dir/ssh_host_ed25519_key
PidFile $dir/sshd.pid
AuthorizedKeysFile $dir/authorized_keys
AllowUsers root
PermitRootLogin prohibit-password
PubkeyAuthentication yes
PasswordAuthentication no
KbdInteractiveAuthentication no
UsePAM no
# The rig's files sit under /tmp, which StrictModes would refuse as a path to the keys.
StrictModes no
UseDNS no
PrintMotd no
PrintLastLog no
X11Forwarding no
AllowAgentForwarding no
AllowTcpForwarding no
PermitTunnel no
Subsystem sftp /usr/lib/openssh/sftp-server
Match LocalAddress $sub.4
	SetEnv $env PATH=/usr/sbin:/sbin
Match all
	SetEnv $env
EOF
}

# client_config DIR SUB: for the rig's ssh and scp only (-F: neither ~/.ssh nor /etc/ssh is read).
client_config() {
	local dir="$1" sub="$2"
	cat <<EOF
# echo-backup test rig (scripts/sshd.sh)
Host $sub.3
	IdentityFile $dir/refused_ed25519
Host * !$sub.3
	IdentityFile $dir/id_ed25519
Host *
	IdentitiesOnly yes
	UserKnownHostsFile $dir/known_hosts
	GlobalKnownHostsFile /dev/null
	StrictHostKeyChecking yes
	BatchMode yes
	PasswordAuthentication no
	KbdInteractiveAuthentication no
	ControlMaster no
	ControlPath none
	ForwardAgent no
	LogLevel ERROR
EOF
}

wait_up() {
	local pid="$1" dir="$2" addr="$3" i
	for ((i = 0; i < 100; i++)); do
		if ! kill -0 "$pid" 2>/dev/null; then
			tail -n 20 "$dir/sshd.log" >&2 || true
			die "sshd exited (log above, from $dir/sshd.log)"
		fi
		"$dir/bin/ssh" -o ConnectTimeout=2 -l root "$addr" true 2>/dev/null && return 0
		sleep 0.1
	done
	tail -n 20 "$dir/sshd.log" >&2 || true
	die "sshd did not let root in on $addr within 10 seconds"
}

make_context() {
	local out
	out="$(DOCKER_HOST= DOCKER_CONTEXT= docker context create "$1" --description "$3" --docker "host=$2" 2>&1)" ||
		die "creating docker context $1: $out"
}

# --- stop --------------------------------------------------------------------------------------

stop() {
	local dir="${1%/}" id docker_config hostif="" pid="" c p i
	case "$dir" in
	/*) ;;
	*) die "stop needs the SSHD_DIR that start printed, not '$dir'" ;;
	esac
	id="$(basename "$dir")"
	[[ "$id" =~ ^[a-z][a-z0-9-]*[0-9a-f]{8}$ ]] || die "$dir is not a folder sshd.sh start made"
	need ip docker
	docker_config="${DOCKER_CONFIG:-}"
	if [ -f "$dir/state" ]; then
		docker_config="$(sed -n 's/^docker_config=//p' "$dir/state")"
		hostif="$(sed -n 's/^hostif=//p' "$dir/state")"
		pid="$(sed -n 's/^pid=//p' "$dir/state" | tail -n 1)"
	fi
	for c in "$id" "$id-silent" "$id-refused" "$id-nodocker"; do
		DOCKER_CONFIG="$docker_config" DOCKER_HOST= DOCKER_CONTEXT= docker context rm -f "$c" >/dev/null 2>&1 || true
	done
	if [ -n "$pid" ] && is_ours "$pid" "$dir"; then
		# Its sessions first (they outlive the listener): every process below it.
		for p in $(descendants "$pid"); do
			kill -KILL "$p" 2>/dev/null || true
		done
		kill -TERM "$pid" 2>/dev/null || true
		for ((i = 0; i < 50; i++)); do
			is_ours "$pid" "$dir" || break
			sleep 0.1
		done
		is_ours "$pid" "$dir" && kill -KILL "$pid" 2>/dev/null || true
	fi
	# Deleting one end removes the pair (the namespace's end goes with the namespace, too).
	if [ -n "$hostif" ] && ip link show "$hostif" >/dev/null 2>&1; then
		ip link del "$hostif" || log "deleting veth $hostif failed"
	fi
	[ ! -d "$dir" ] || rm -rf --one-file-system "$dir" || log "removing $dir failed"
	[ ! -e "$dir" ] || die "$dir is still there"
	log "ssh server $id stopped and removed"
}

# is_ours PID DIR: PID is a live process whose command line names DIR (a pid is reused).
is_ours() {
	local c
	c="$({ tr '\0' ' ' <"/proc/$1/cmdline"; } 2>/dev/null)" && [[ "$c" == *"$2/"* ]]
}

# descendants PID: its children, theirs, and so on.
descendants() {
	local p kids
	kids="$(ps -o pid= --ppid "$1" 2>/dev/null || true)"
	for p in $kids; do
		echo "$p"
		descendants "$p"
	done
}

case "${1:-}" in
start) shift; start "$@" ;;
install)
	need
	install_sshd
	log "$SSHD: $("$SSHD" -V 2>&1 | head -n 1)"
	;;
stop)
	[ $# -eq 2 ] || die "usage: $0 stop SSHD_DIR"
	stop "$2"
	;;
-h | --help) usage ;;
*) usage >&2; exit 2 ;;
esac
