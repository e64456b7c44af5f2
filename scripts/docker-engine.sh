#!/usr/bin/env bash
# Bootstraps a private Docker engine on a machine that has only the docker client, and builds the grader image.
#   scripts/docker-engine.sh start       start dockerd (if no engine answers) and print DOCKER_HOST=...
#   scripts/docker-engine.sh base-image  build grader-base:py311 (Debian bookworm + python3.11) with debootstrap
#   scripts/docker-engine.sh build       build grader:latest on that base, pip reading this host's package indexes
#   scripts/docker-engine.sh stop        stop the dockerd that `start` started
# State (images, build cache) lives in $GRADER_DOCKER_STATE so later runs on the same machine reuse it.
set -euo pipefail

STATE=${GRADER_DOCKER_STATE:-/var/tmp/grader-docker}
SOCKET=unix://$STATE/docker.sock
HOST_FILE=$STATE/docker-host.env
PIDFILE=$STATE/dockerd.pid
LOG=$STATE/dockerd.log
BASE_IMAGE=${GRADER_BASE_IMAGE:-grader-base:py311}
IMAGE=${GRADER_IMAGE:-grader:latest}
SUITE=bookworm
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)

log() { echo "docker-engine: $*" >&2; }

as_root() {
    if [[ $(id -u) -eq 0 ]]; then "$@"; else sudo "$@"; fi
}

apt_install() {
    local missing=()
    for pair in "$@"; do
        command -v "${pair%%:*}" >/dev/null 2>&1 || missing+=("${pair#*:}")
    done
    ((${#missing[@]})) || return 0
    log "installing ${missing[*]}"
    as_root env DEBIAN_FRONTEND=noninteractive apt-get update -qq
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

# The engine to talk to: the one already answering, else ours.
use_engine() {
    if [[ -z ${DOCKER_HOST:-} ]] && ! docker info >/dev/null 2>&1 && [[ -S $STATE/docker.sock ]]; then
        export DOCKER_HOST=$SOCKET
    fi
    docker info >/dev/null 2>&1 || { log "no engine answers; run '$0 start' first"; exit 1; }
}

cmd_start() {
    mkdir -p "$STATE"
    if docker info >/dev/null 2>&1; then
        log "an engine already answers (${DOCKER_HOST:-default socket}); not starting another"
        echo "DOCKER_HOST=${DOCKER_HOST:-unix:///var/run/docker.sock}" | tee "$HOST_FILE"
        return 0
    fi
    apt_install dockerd:docker.io debootstrap:debootstrap
    mkdir -p "$STATE/data" "$STATE/exec"
    if [[ -f $PIDFILE && $(cat "/proc/$(cat "$PIDFILE")/comm" 2>/dev/null) == dockerd ]]; then
        log "dockerd $(cat "$PIDFILE") is running but not answering yet"
    else
        # No bridge and no iptables: containers get --network none or host, and nothing is NATed from this machine.
        as_root setsid dockerd --data-root "$STATE/data" --exec-root "$STATE/exec" --host "$SOCKET" \
            --pidfile "$PIDFILE" --bridge none --iptables=false --ip-masq=false >"$LOG" 2>&1 </dev/null &
    fi
    for _ in $(seq 60); do
        if DOCKER_HOST=$SOCKET docker info >/dev/null 2>&1; then
            echo "DOCKER_HOST=$SOCKET" | tee "$HOST_FILE"
            return 0
        fi
        sleep 1
    done
    log "dockerd did not answer within 60 s; last lines of $LOG:"
    tail -20 "$LOG" >&2
    exit 1
}

cmd_stop() {
    if [[ ! -f $PIDFILE ]]; then
        log "no dockerd started by this script (no $PIDFILE)"
        return 0
    fi
    local pid
    pid=$(cat "$PIDFILE")
    # After a reboot the pid may belong to something else.
    if [[ $(cat "/proc/$pid/comm" 2>/dev/null) == dockerd ]]; then
        as_root kill "$pid"
        for _ in $(seq 30); do kill -0 "$pid" 2>/dev/null || break; sleep 1; done
    fi
    rm -f "$HOST_FILE"
    log "stopped dockerd $pid"
}

# The Debian mirror this machine's apt uses, so debootstrap reaches the same one.
debian_mirror() {
    local uri
    uri=$(cat /etc/apt/sources.list /etc/apt/sources.list.d/*.list /etc/apt/sources.list.d/*.sources 2>/dev/null \
        | grep -v '^[[:space:]]*#' | grep -oE 'https?://[^] ]+/debian/?( |$)' | head -1 | tr -d ' ' || true)
    echo "${uri:-http://deb.debian.org/debian}"
}

cmd_base_image() {
    use_engine
    if docker image inspect "$BASE_IMAGE" >/dev/null 2>&1; then
        log "$BASE_IMAGE exists"
        return 0
    fi
    apt_install debootstrap:debootstrap
    local dir
    dir=$(mktemp -d "$STATE/rootfs.XXXXXX")
    trap 'as_root rm -rf "$dir"; trap - RETURN' RETURN
    log "debootstrap $SUITE from $(debian_mirror) into $dir"
    as_root debootstrap --variant=minbase --include=python3,python3-venv,python3-pip,ca-certificates,bubblewrap \
        "$SUITE" "$dir" "$(debian_mirror)" >"$STATE/debootstrap.log" 2>&1 \
        || { tail -20 "$STATE/debootstrap.log" >&2; exit 1; }
    as_root rm -rf "$dir"/var/cache/apt/archives/*.deb "$dir"/var/lib/apt/lists/*
    as_root tar -C "$dir" -c . | docker import --change 'CMD ["python3"]' --change 'ENV LANG=C.UTF-8' - "$BASE_IMAGE"
    docker image ls "$BASE_IMAGE"
}

# One of this host's pip settings (PIP_* variables win over config files), or nothing.
pip_setting() {
    python3 -m pip config list 2>/dev/null | sed -n "s/^[^=]*\\.$1='\\(.*\\)'\$/\\1/p" | head -1
}

# pip inside `docker build` cannot see file:// indexes, so serve them on loopback (the build uses --network host).
serve_local_indexes() {
    local serve=$STATE/pip-serve port i=0 url path extra=() links=()
    rm -rf "$serve" && mkdir -p "$serve"
    # A fixed port: the URLs are build args, and a new value would invalidate the cached pip layers.
    port=${GRADER_PIP_PORT:-38741}
    # SO_REUSEADDR as http.server sets it, so a port left in TIME_WAIT by the last build still counts as free.
    if ! python3 -c "import socket as s; k = s.socket(); k.setsockopt(s.SOL_SOCKET, s.SO_REUSEADDR, 1); \
k.bind(('127.0.0.1', $port))" 2>/dev/null; then
        port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
        log "port ${GRADER_PIP_PORT:-38741} is taken; serving the local indexes on $port (pip layers rebuild)"
    fi
    for url in $(pip_setting extra-index-url); do
        if [[ $url == file://* ]]; then
            path=${url#file://}
            # The parent too, as the index pages link to ../../files/.
            ln -s "$(dirname "$path")" "$serve/$i"
            extra+=("http://127.0.0.1:$port/$i/$(basename "$path")")
            i=$((i + 1))
        else
            extra+=("$url")
        fi
    done
    for path in $(pip_setting find-links); do
        path=${path#file://}
        [[ -d $path ]] || continue
        ln -s "$path" "$serve/$i"
        links+=("http://127.0.0.1:$port/$i/")
        i=$((i + 1))
    done
    if ((${#extra[@]})); then BUILD_ARGS+=(--build-arg "PIP_EXTRA_INDEX_URL=${extra[*]}"); fi
    if ((${#links[@]})); then BUILD_ARGS+=(--build-arg "PIP_FIND_LINKS=${links[*]}"); fi
    ((i)) || return 0
    python3 -m http.server --bind 127.0.0.1 --directory "$serve" "$port" >"$STATE/pip-serve.log" 2>&1 &
    SERVER_PID=$!
    for _ in $(seq 20); do
        python3 -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:$port/')" 2>/dev/null && return 0
        sleep 0.5
    done
    log "the local index server on port $port did not start"
    exit 1
}

# A client that builds with BuildKit: one with buildx, else Debian's docker.io client (20.10, BuildKit built in).
buildkit_client() {
    local client
    for client in docker /usr/bin/docker; do
        if DOCKER_BUILDKIT=1 "$client" build --help >/dev/null 2>&1; then
            echo "$client"
            return 0
        fi
    done
    log "no docker client here can build with BuildKit: install buildx, or Debian's docker.io"
    exit 1
}

cmd_build() {
    use_engine
    docker image inspect "$BASE_IMAGE" >/dev/null 2>&1 || cmd_base_image
    local client cert
    client=$(buildkit_client)
    BUILD_ARGS=(--build-arg "BASE_IMAGE=$BASE_IMAGE")
    cert=$(pip_setting cert)
    cert=${cert:-/etc/ssl/certs/ca-certificates.crt}
    [[ -f $cert ]] && BUILD_ARGS+=(--secret "id=cacert,src=$cert")
    SERVER_PID=
    trap 'if [[ -n $SERVER_PID ]]; then kill "$SERVER_PID"; fi' EXIT
    serve_local_indexes
    # No bridge on our engine, so RUN steps need the host's network (pip reaches PyPI and the loopback server).
    DOCKER_BUILDKIT=1 "$client" build --network host --progress plain --label grader.image=1 "${BUILD_ARGS[@]}" \
        "$@" -f "$ROOT/docker/Dockerfile" -t "$IMAGE" "$ROOT"
    # Each rebuilt dependency layer leaves ~6 GB behind: drop replaced images, and on our own engine old cache.
    docker image prune -f --filter label=grader.image=1 >/dev/null
    if [[ ${DOCKER_HOST:-} == "$SOCKET" ]]; then
        DOCKER_BUILDKIT=1 "$client" builder prune -f --keep-storage "${GRADER_BUILD_CACHE:-8GB}" >/dev/null
    fi
}

case ${1:-} in
    start) cmd_start ;;
    stop) cmd_stop ;;
    base-image) cmd_base_image ;;
    build) shift; cmd_build "$@" ;;
    *) echo "usage: $0 start|base-image|build [docker build args]|stop" >&2; exit 2 ;;
esac
