#!/usr/bin/env bash
# Prepare this machine for gantry's tests: Debian packages, a Docker engine, two local
# registries and the fixture images. Idempotent; prints one line per action it takes and
# nothing when everything is already in place. Run as root (Debian 12); needs no TTY/stdin.
#
# What it sets up (nothing is pulled from Docker Hub or any outside registry):
#   * Debian packages: docker.io docker-registry busybox-static apache2-utils tmux chromium,
#     openssh-server (the tests' SSH Git remote and agent: sshd on loopback, started by the
#     test itself; the package's own service is not started),
#     PHP (with php-zip for the Composer archive test), gcc-aarch64-linux-gnu and musl-tools
#     (C compilers for `make dist`'s build scripts: ring's C and assembly), crun iproute2 iptables (the native runtime: crun runs steps, iproute2 and
#     iptables give them their network; runc comes with docker.io)
#     (plus curl / golang-go only if no curl / no Go toolchain is found).
#   * Rust's musl targets (x86_64, aarch64) for `make dist`, through rustup when it is there.
#   * dockerd (`dockerd --storage-driver=overlay2`, log /var/log/gantry-dockerd.log),
#     started only if `docker info` does not answer.
#   * 127.0.0.1:5000  plain registry (no auth), log /var/log/gantry-registry.log
#   * 127.0.0.1:5001  registry with htpasswd basic auth, log /var/log/gantry-registry-auth.log
#       user: gantry   password: gantry-test-password
#     Test-only credentials (loopback only), also in scripts/test-registry.env, which the
#     Makefile exports to the tests as GANTRY_TEST_AUTH_REGISTRY{,_USER,_PASSWORD}.
#   * fixture images under 127.0.0.1:5000/gantry-fixtures/ (see scripts/fixtures.sh).
#
# State (configs, registry storage, pid files): $GANTRY_TEST_STATE_DIR, default
# /var/lib/gantry-test. `make clean-test-env` stops the processes this script started.
set -euo pipefail

SCRIPT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=scripts/test-registry.env
source "$SCRIPT_DIR/test-registry.env"

STATE_DIR=${GANTRY_TEST_STATE_DIR:-/var/lib/gantry-test}
RUN_DIR=$STATE_DIR/run
DOCKERD_LOG=/var/log/gantry-dockerd.log
REGISTRY_LOG=/var/log/gantry-registry.log
REGISTRY_AUTH_LOG=/var/log/gantry-registry-auth.log
APT_LOG=/var/log/gantry-setup-apt.log

PACKAGES=(docker.io docker-registry busybox-static apache2-utils tmux openssh-server chromium php-cli php-curl php-mbstring php-zip composer phpunit gcc-aarch64-linux-gnu musl-tools crun iproute2 iptables)

say() { printf 'setup: %s\n' "$*"; }
die() { printf 'setup: ERROR: %s\n' "$*" >&2; exit 1; }
need_root() { [[ $(id -u) -eq 0 ]] || die "$1 needs root (run as root or install/start it yourself)"; }
show_log() {
    if [[ -f $1 ]]; then
        printf -- '--- last lines of %s ---\n' "$1" >&2
        tail -n 25 "$1" >&2
    fi
}

# ---------------------------------------------------------------- Debian packages
pkg_installed() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q 'install ok installed'; }

missing=()
for p in "${PACKAGES[@]}"; do pkg_installed "$p" || missing+=("$p"); done
command -v curl >/dev/null || missing+=(curl)
if ! command -v go >/dev/null && [[ ! -x /usr/local/go/bin/go ]] && ! pkg_installed golang-go; then
    missing+=(golang-go) # only for the golang fixture image; any Go toolchain will do
fi

if ((${#missing[@]})); then
    need_root "installing ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive NEEDRESTART_MODE=a NEEDRESTART_SUSPEND=1
    # Keep package maintainer scripts from starting services (docker, docker-registry):
    # this script starts exactly what it needs itself.
    made_policy=
    if [[ ! -e /usr/sbin/policy-rc.d ]]; then
        made_policy=1
        trap 'rm -f /usr/sbin/policy-rc.d' EXIT
        printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d
        chmod 0755 /usr/sbin/policy-rc.d
    fi
    apt_opts=(-q -y -o DPkg::Lock::Timeout=300 -o Dpkg::Use-Pty=0
        -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold)
    say "apt-get update (log: $APT_LOG)"
    apt-get "${apt_opts[@]}" update >>"$APT_LOG" 2>&1 </dev/null ||
        { show_log "$APT_LOG"; die "apt-get update failed; see $APT_LOG"; }
    say "installing Debian packages: ${missing[*]}"
    apt-get "${apt_opts[@]}" install "${missing[@]}" >>"$APT_LOG" 2>&1 </dev/null ||
        { show_log "$APT_LOG"; die "apt-get install failed; see $APT_LOG"; }
    if [[ -n $made_policy ]]; then
        rm -f /usr/sbin/policy-rc.d
        trap - EXIT
    fi
fi

# ---------------------------------------------------------------- Rust targets for make dist
# The static release binaries (scripts/dist.sh) need the musl standard libraries of the
# toolchain rust-toolchain.toml pins. Without rustup, make dist says what is missing.
if command -v rustup >/dev/null; then
    # From the repository root, so rustup uses (and if need be installs) the pinned toolchain.
    installed=$(cd "$SCRIPT_DIR/.." && rustup target list --installed 2>/dev/null || true)
    for target in x86_64-unknown-linux-musl aarch64-unknown-linux-musl; do
        if ! grep -qx "$target" <<<"$installed"; then
            say "rustup target add $target"
            (cd "$SCRIPT_DIR/.." && rustup target add "$target" >/dev/null 2>&1) ||
                say "could not add the Rust target $target; make dist will skip it"
        fi
    done
fi

# ---------------------------------------------------------------- helpers for daemons
# start_bg PIDFILE LOGFILE CMD...: run CMD detached (own session, stdin /dev/null, output
# appended to LOGFILE, no inherited descriptors above 2) and record its pid in PIDFILE.
start_bg() {
    local pidfile=$1 log=$2
    shift 2
    mkdir -p "$(dirname "$pidfile")" "$(dirname "$log")"
    rm -f "$pidfile"
    # shellcheck disable=SC2016
    setsid bash -c '
        pidfile=$1; shift
        for fd in /proc/$$/fd/*; do
            n=${fd##*/}
            if ((n > 2)) && [[ -e $fd ]]; then eval "exec $n>&-"; fi
        done
        echo $$ >"$pidfile"
        exec "$@"' gantry-start "$pidfile" "$@" </dev/null >>"$log" 2>&1 &
}

# pid_running PIDFILE: the process recorded in PIDFILE is alive.
pid_running() { [[ -s $1 ]] && kill -0 "$(cat "$1")" 2>/dev/null; }

# pid_is PIDFILE NAME: the process recorded in PIDFILE is alive and is NAME.
pid_is() {
    local pid
    pid=$(cat "$1" 2>/dev/null) || return 1
    [[ $pid =~ ^[0-9]+$ && $(cat "/proc/$pid/comm" 2>/dev/null) == "$2" ]]
}

# http_code URL [curl args...]: HTTP status of a GET, or 000 when nothing answers.
http_code() {
    local url=$1
    shift
    curl -s -o /dev/null -w '%{http_code}' --max-time 5 "$@" "$url" 2>/dev/null || true
}

# write_file PATH CONTENT: (re)write PATH only when its content differs.
write_file() {
    if [[ ! -f $1 || "$(cat "$1")" != "$2" ]]; then
        mkdir -p "$(dirname "$1")"
        printf '%s\n' "$2" >"$1"
        say "wrote $1"
    fi
}

# ---------------------------------------------------------------- cgroups
# dockerd needs the cgroup hierarchies; mount them if the machine has none (cgroupfs-mount
# comes with docker.io's recommends).
if ! grep -qE ' - cgroup2? ' /proc/self/mountinfo && command -v cgroupfs-mount >/dev/null; then
    need_root "mounting cgroups"
    say "mounting cgroup hierarchies (cgroupfs-mount)"
    cgroupfs-mount
fi

# ---------------------------------------------------------------- Docker engine
docker_ok() { timeout 20 docker info >/dev/null 2>&1; }

if ! docker_ok; then
    if [[ -n ${DOCKER_HOST:-} && $DOCKER_HOST != unix:///var/run/docker.sock && $DOCKER_HOST != unix:///run/docker.sock ]]; then
        die "DOCKER_HOST=$DOCKER_HOST does not answer 'docker info'; this script only starts the default daemon"
    fi
    need_root "starting dockerd"
    if pid_is /var/run/docker.pid dockerd; then
        say "dockerd (pid $(cat /var/run/docker.pid)) is running but not answering yet; waiting"
    else
        # Pid files left by a daemon that was killed can name a reused pid; dockerd would
        # then refuse to start or wait for a containerd that is not there.
        for f in /var/run/docker.pid:dockerd /var/run/docker/containerd/containerd.pid:containerd; do
            if [[ -e ${f%:*} ]] && ! pid_is "${f%:*}" "${f#*:}"; then rm -f "${f%:*}"; fi
        done
        say "starting dockerd --storage-driver=overlay2 (log: $DOCKERD_LOG)"
        start_bg "$RUN_DIR/dockerd.pid" "$DOCKERD_LOG" dockerd --storage-driver=overlay2
    fi
    # A daemon with many images and containers from earlier runs took over a minute to start here.
    deadline=$((SECONDS + 180))
    until docker_ok; do
        if [[ -s $RUN_DIR/dockerd.pid ]] && ! pid_running "$RUN_DIR/dockerd.pid"; then
            show_log "$DOCKERD_LOG"
            die "dockerd exited during start-up; see $DOCKERD_LOG"
        fi
        if ((SECONDS >= deadline)); then
            show_log "$DOCKERD_LOG"
            die "dockerd did not answer 'docker info' within 180s; see $DOCKERD_LOG"
        fi
        sleep 1
    done
fi

# ---------------------------------------------------------------- registries
# registry_config ADDR STORAGE [AUTH_HTPASSWD]: Distribution 2.8 config text.
registry_config() {
    cat <<EOF
# Written by scripts/setup.sh (gantry tests). Loopback only.
version: 0.1
log:
  level: info
  fields:
    service: gantry-test-registry
storage:
  filesystem:
    rootdirectory: $2
  delete:
    enabled: true
  cache:
    blobdescriptor: inmemory
http:
  addr: $1
  secret: gantry-test-registry-not-secret
  headers:
    X-Content-Type-Options: [nosniff]
EOF
    if [[ -n ${3:-} ]]; then
        cat <<EOF
auth:
  htpasswd:
    realm: gantry-test
    path: $3
EOF
    fi
}

# wait_registry NAME ADDR PIDFILE LOG: wait until ADDR answers /v2/ with anything.
wait_registry() {
    local name=$1 addr=$2 pidfile=$3 log=$4 deadline=$((SECONDS + 30))
    until [[ $(http_code "http://$addr/v2/") != 000 ]]; do
        if [[ -s $pidfile ]] && ! pid_running "$pidfile"; then
            show_log "$log"
            die "$name registry on $addr exited during start-up; see $log"
        fi
        if ((SECONDS >= deadline)); then
            show_log "$log"
            die "$name registry on $addr did not answer within 30s; see $log"
        fi
        sleep 0.3
    done
}

# Plain registry on 127.0.0.1:5000.
REG_DIR=$STATE_DIR/registry
code=$(http_code "http://$GANTRY_TEST_REGISTRY/v2/")
if [[ $code != 200 ]]; then
    [[ $code == 000 ]] || die "something else answers on $GANTRY_TEST_REGISTRY (GET /v2/ gave HTTP $code); stop it first"
    need_root "starting the registry on $GANTRY_TEST_REGISTRY"
    write_file "$REG_DIR/config.yml" "$(registry_config "$GANTRY_TEST_REGISTRY" "$REG_DIR/storage")"
    mkdir -p "$REG_DIR/storage"
    say "starting registry on $GANTRY_TEST_REGISTRY (log: $REGISTRY_LOG)"
    start_bg "$RUN_DIR/registry.pid" "$REGISTRY_LOG" docker-registry serve "$REG_DIR/config.yml"
    wait_registry plain "$GANTRY_TEST_REGISTRY" "$RUN_DIR/registry.pid" "$REGISTRY_LOG"
    code=$(http_code "http://$GANTRY_TEST_REGISTRY/v2/")
    [[ $code == 200 ]] || die "registry on $GANTRY_TEST_REGISTRY answers HTTP $code instead of 200; see $REGISTRY_LOG"
fi

# Registry with htpasswd basic auth on 127.0.0.1:5001.
AUTH_DIR=$STATE_DIR/registry-auth
AUTH_USER=$GANTRY_TEST_AUTH_REGISTRY_USER
AUTH_PASS=$GANTRY_TEST_AUTH_REGISTRY_PASSWORD
code=$(http_code "http://$GANTRY_TEST_AUTH_REGISTRY/v2/")
if [[ $code == 000 ]]; then
    need_root "starting the auth registry on $GANTRY_TEST_AUTH_REGISTRY"
    if ! htpasswd -vb "$AUTH_DIR/htpasswd" "$AUTH_USER" "$AUTH_PASS" >/dev/null 2>&1; then
        mkdir -p "$AUTH_DIR"
        htpasswd -Bbn "$AUTH_USER" "$AUTH_PASS" >"$AUTH_DIR/htpasswd"
        say "wrote $AUTH_DIR/htpasswd (user $AUTH_USER)"
    fi
    write_file "$AUTH_DIR/config.yml" \
        "$(registry_config "$GANTRY_TEST_AUTH_REGISTRY" "$AUTH_DIR/storage" "$AUTH_DIR/htpasswd")"
    mkdir -p "$AUTH_DIR/storage"
    say "starting auth registry on $GANTRY_TEST_AUTH_REGISTRY (log: $REGISTRY_AUTH_LOG)"
    start_bg "$RUN_DIR/registry-auth.pid" "$REGISTRY_AUTH_LOG" docker-registry serve "$AUTH_DIR/config.yml"
    wait_registry auth "$GANTRY_TEST_AUTH_REGISTRY" "$RUN_DIR/registry-auth.pid" "$REGISTRY_AUTH_LOG"
    code=$(http_code "http://$GANTRY_TEST_AUTH_REGISTRY/v2/")
fi
[[ $code == 401 ]] ||
    die "registry on $GANTRY_TEST_AUTH_REGISTRY answers HTTP $code without credentials (want 401); it is not the auth registry"
code=$(http_code "http://$GANTRY_TEST_AUTH_REGISTRY/v2/" -u "$AUTH_USER:$AUTH_PASS")
[[ $code == 200 ]] ||
    die "registry on $GANTRY_TEST_AUTH_REGISTRY answers HTTP $code with $AUTH_USER's credentials (want 200); run 'make clean-test-env' and retry"

# ---------------------------------------------------------------- fixture images
bash "$SCRIPT_DIR/fixtures.sh"
