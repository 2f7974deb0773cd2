#!/usr/bin/env bash
# Make sure the container's base image (bentofile.yaml `docker: base_image:`, python:3.11-slim)
# exists locally; on a machine without Docker Hub, build a stand-in from Debian packages.
#
#   docker/base-image.sh                      # no-op (about a second) when the image is there
#   BASE_IMAGE_PULL=1 docker/base-image.sh    # try `docker pull` first (a machine with Docker Hub)
#   BASE_IMAGE_REBUILD=1 docker/base-image.sh # rebuild the stand-in even if the tag exists
#
# The stand-in: Debian 12 (bookworm) minbase from the Debian mirror with python3 (3.11), python3-venv,
# python3-pip and ca-certificates; the host's CA bundle (this network intercepts TLS: without it pip
# and uv inside `docker build` cannot reach PyPI); no EXTERNALLY-MANAGED marker (BentoML's Dockerfile
# pip-installs uv system-wide); /usr/bin/python -> python3. It is imported under the same tag as the
# official image, so BentoML's generated Dockerfile (`FROM python:3.11-slim`) uses it unchanged, and
# labelled `org.opencontainers.image.vendor=model-server stand-in` so it is easy to tell apart:
#   docker image inspect python:3.11-slim --format '{{index .Config.Labels "org.opencontainers.image.vendor"}}'
# About 50 s and 145 MB, once. Needs root (debootstrap), docker and debootstrap (scripts/docker-engine.sh).
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
log() { echo "base-image: $*" >&2; }

configured=$(sed -n 's/^[[:space:]]*base_image:[[:space:]]*"\{0,1\}\([^"[:space:]#]*\)"\{0,1\}.*/\1/p' "$ROOT/bentofile.yaml" | head -n1)
IMAGE=${BASE_IMAGE:-${configured:-python:3.11-slim}}
SUITE=${DEBIAN_SUITE:-bookworm}
MIRROR=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
HOST_CA=${HOST_CA_BUNDLE:-/etc/ssl/certs/ca-certificates.crt}
CA=/etc/ssl/certs/ca-certificates.crt

if [ "${BASE_IMAGE_REBUILD:-0}" != 1 ] && docker image inspect "$IMAGE" >/dev/null 2>&1; then
    log "$IMAGE is present ($(docker image inspect "$IMAGE" --format '{{index .Config.Labels "org.opencontainers.image.vendor"}}' 2>/dev/null || true))"
    exit 0
fi

if [ "${BASE_IMAGE_PULL:-0}" = 1 ] && timeout "${BASE_IMAGE_PULL_TIMEOUT:-60}" docker pull -q "$IMAGE" >/dev/null 2>&1; then
    log "pulled $IMAGE"
    exit 0
fi

command -v debootstrap >/dev/null || { log "debootstrap is missing: run scripts/docker-engine.sh (or apt-get install debootstrap)"; exit 1; }
[ "$(id -u)" = 0 ] || { log "debootstrap needs root"; exit 1; }

started=$SECONDS
rootfs=$(mktemp -d /var/tmp/model-server-base-rootfs.XXXXXX)
trap 'rm -rf "$rootfs"' EXIT
log "building a stand-in for $IMAGE: debootstrap $SUITE from $MIRROR"
debootstrap --variant=minbase --include=python3,python3-venv,python3-pip,ca-certificates \
    "$SUITE" "$rootfs" "$MIRROR" >"$rootfs.log" 2>&1 || { tail -n 30 "$rootfs.log" >&2; rm -f "$rootfs.log"; exit 1; }
rm -f "$rootfs.log"

cp "$HOST_CA" "$rootfs$CA"
rm -f "$rootfs"/usr/lib/python3*/EXTERNALLY-MANAGED
ln -sf python3 "$rootfs/usr/bin/python"
# Not needed in an image: package caches and lists, docs, man pages, translations.
rm -rf "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/lib/apt/lists/* \
       "$rootfs"/usr/share/doc/* "$rootfs"/usr/share/man/* "$rootfs"/usr/share/info/* "$rootfs"/usr/share/locale/*

# `docker import --change` sets the environment in the one imported layer (no second layer needed).
tar --numeric-owner -C "$rootfs" -c . | docker import \
    --change "ENV SSL_CERT_FILE=$CA PIP_CERT=$CA UV_NATIVE_TLS=1 LANG=C.UTF-8" \
    --change 'LABEL org.opencontainers.image.vendor="model-server stand-in" org.opencontainers.image.description="Debian bookworm minbase + python3.11, built by docker/base-image.sh"' \
    --change 'CMD ["python3"]' \
    - "$IMAGE" >/dev/null
log "built $IMAGE in $((SECONDS - started)) s, $(docker image inspect "$IMAGE" --format '{{.Size}}' | awk '{printf "%.0f MB", $1/1e6}')"
