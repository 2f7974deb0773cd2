#!/usr/bin/env bash
# Build the service's container image, or reuse it: prints the image tag on its last line.
#
#   scripts/build-container.sh          # -> model-server:<bento version>, also tagged model-server:latest
#
# 1. a Docker engine (scripts/docker-engine.sh), 2. the base image (docker/base-image.sh),
# 3. the bentofile of this deployment (scripts/bentofile.py: TensorFlow's packages only when a served
#    version runs on TensorFlow), 4. `bentoml build --version V` where V hashes the Bento's inputs and
#    models (scripts/bento_version.py), skipped when that Bento is in the store, 5. `bentoml containerize`
#    into model-server:V, skipped when that image exists. Every served version must be in the store
#    (`make models`). The first image build installs the packages from PyPI; later builds reuse
#    Docker's layer cache while the requirements are unchanged.
# Environment: VENV (.venv), IMAGE_NAME (model-server), BENTOML_HOME (the model and Bento store).
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
VENV=${VENV:-.venv}
case $VENV in /*) ;; *) VENV=$ROOT/$VENV ;; esac
IMAGE_NAME=${IMAGE_NAME:-model-server}
export BENTOML_DO_NOT_TRACK=true
log() { echo "build-container: $*" >&2; }

scripts/docker-engine.sh
docker/base-image.sh

# The Bento's requirements follow the engines the served versions run on (no TensorFlow for ONNX Runtime).
bentofile=build/bentofile.yaml
"$VENV/bin/python" scripts/bentofile.py "$bentofile"
version=$("$VENV/bin/python" scripts/bento_version.py "$bentofile")
bento_name=$(sed -n 's/^name:[[:space:]]*\([^[:space:]#]*\).*/\1/p' bentofile.yaml)
bento="$bento_name:$version"
image="$IMAGE_NAME:$version"

if "$VENV/bin/bentoml" get "$bento" >/dev/null 2>&1; then
    log "reusing Bento $bento"
else
    log "bentoml build --version $version"
    "$VENV/bin/bentoml" build -f "$bentofile" --version "$version" --output tag . >&2
fi

if docker image inspect "$image" >/dev/null 2>&1; then
    log "reusing image $image"
else
    log "bentoml containerize $bento -> $image (legacy builder, host network)"
    started=$SECONDS
    # DOCKER_BUILDKIT=0: the classic builder; BuildKit needs buildx, which Debian 12 does not package.
    # Run from the temporary directory: BentoML 1.4.40 renders the Dockerfile template in a build
    # context under $TMPDIR and refuses it unless that lies under the working directory
    # (bentoml/BentoML#5566, open).
    tmp=$(cd "${TMPDIR:-/tmp}" && pwd -P)
    (cd "$tmp" && DOCKER_BUILDKIT=0 "$VENV/bin/bentoml" containerize "$bento" -t "$image" --opt network=host >&2)
    docker image inspect "$image" >/dev/null 2>&1 || { log "bentoml containerize did not produce $image"; exit 1; }
    log "built $image in $((SECONDS - started)) s"
fi
docker tag "$image" "$IMAGE_NAME:latest"
log "$image: $(docker image inspect "$image" --format '{{.Size}}' | awk '{printf "%.2f GB", $1/1e9}')"
echo "$image"
