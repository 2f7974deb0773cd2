#!/usr/bin/env bash
# Make sure a Docker engine answers `docker info`; idempotent (a running engine is left alone).
#
#   scripts/docker-engine.sh
#
# When it does not answer: installs Debian's docker.io (and debootstrap, for docker/base-image.sh)
# if missing, then starts `dockerd --bridge=none` in the background, its output in $DOCKERD_LOG.
# --bridge=none keeps Docker off private address ranges: run and build with `--network host`.
# Needs root (or sudo) when it has to install or start anything.
set -euo pipefail

DOCKERD_LOG=${DOCKERD_LOG:-/var/log/dockerd.log}
WAIT_SECONDS=${DOCKERD_WAIT_SECONDS:-60}
SUDO=$([ "$(id -u)" = 0 ] || echo sudo)

log() { echo "docker-engine: $*" >&2; }

if docker info >/dev/null 2>&1; then
    log "engine answers: $(docker version --format '{{.Server.Version}}' 2>/dev/null)"
    exit 0
fi

missing=()
command -v dockerd >/dev/null 2>&1 || missing+=(docker.io)
command -v debootstrap >/dev/null 2>&1 || missing+=(debootstrap)
if [ ${#missing[@]} -gt 0 ]; then
    log "installing ${missing[*]} from Debian"
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
command -v docker >/dev/null 2>&1 || { log "no docker client after installing docker.io"; exit 1; }

if ! pgrep -x dockerd >/dev/null 2>&1; then
    log "starting dockerd --bridge=none (log: $DOCKERD_LOG)"
    # setsid + nohup: the engine outlives this script and the shell that ran it.
    $SUDO bash -c "setsid nohup dockerd --bridge=none >>'$DOCKERD_LOG' 2>&1 < /dev/null &"
fi

for ((i = 0; i < WAIT_SECONDS * 2; i++)); do
    if docker info >/dev/null 2>&1; then
        log "engine ready: $(docker version --format '{{.Server.Version}}' 2>/dev/null), storage $(docker info --format '{{.Driver}}')"
        exit 0
    fi
    sleep 0.5
done
log "dockerd did not answer within ${WAIT_SECONDS} s; last lines of $DOCKERD_LOG:"
tail -n 30 "$DOCKERD_LOG" >&2 || true
exit 1
