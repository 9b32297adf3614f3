#!/usr/bin/env bash
# Build the sample app image offline: a static Go binary in a FROM scratch image.
# Usage: build-sample-app.sh [--print-tag]
#   -> docker images kubedrill/sample-app:<srchash> and kubedrill/sample-app:latest
#   stdout: the image reference (kubedrill/sample-app:<srchash>); progress goes to stderr.
# Why a source hash tag: kind nodes cache images by reference, so a changed app must get a new
# reference or a stale binary keeps running. The hash covers the app's go.mod, its non-test .go
# files and this script; kubedrill/workload/sample.py computes the same hash (keep them in step).
# Why the legacy builder (DOCKER_BUILDKIT=0): BuildKit may try to fetch its frontend; FROM scratch
# needs nothing from a registry, and no registry is reachable here.
. "$(dirname "$0")/lib.sh"
REPO=kubedrill/sample-app
srchash() {
  ( cd "$KD_ROOT"
    # shellcheck disable=SC2012 # plain file names, no spaces by construction
    ls apps/sample/go.mod apps/sample/*.go clusters/images/build-sample-app.sh | grep -v '_test\.go$' \
      | LC_ALL=C sort | xargs sha256sum ) | sha256sum | cut -c1-12
}
H=$(srchash)
IMAGE="$REPO:$H"
if [ "${1:-}" = "--print-tag" ]; then echo "$IMAGE"; exit 0; fi
[ $# -eq 0 ] || die "unknown argument $1; usage: build-sample-app.sh [--print-tag]"
command -v docker >/dev/null || die "docker is not installed; run clusters/engine/ensure-docker.sh first."
docker info >/dev/null 2>&1 || die "cannot reach the Docker engine (docker info failed); start it with clusters/engine/ensure-docker.sh."
if docker image inspect "$IMAGE" >/dev/null 2>&1; then
  docker tag "$IMAGE" "$REPO:latest"
  log "sample app image $IMAGE is cached (source unchanged)"
  echo "$IMAGE"; exit 0
fi
# The binary is cached per source hash under $KD_CACHE, so a pruned image rebuilds without Go.
BIN_DIR="$KD_CACHE/sample-app/$H"
if is_done "$BIN_DIR"; then
  log "sample app binary cached in $BIN_DIR"
else
  command -v go >/dev/null || die "go is not installed; install Go >= 1.22 to build the sample app."
  mkdir -p "$BIN_DIR"
  # GOWORK=off and -mod=mod keep a stray workspace or vendor/ from changing what gets built.
  run_step "compile sample app (static, CGO_ENABLED=0)" \
    env -C "$KD_ROOT/apps/sample" CGO_ENABLED=0 GOOS=linux GOWORK=off GOFLAGS=-mod=mod \
    go build -trimpath -ldflags "-s -w" -o "$BIN_DIR/app" .
  mark_done "$BIN_DIR"
fi
TMP=$(mktemp -d "${TMPDIR:-/tmp}/kd-sample-app.XXXXXX")
trap 'rm -rf "$TMP"' EXIT
cp "$BIN_DIR/app" "$TMP/app"
cat > "$TMP/Dockerfile" <<DOCKERFILE
FROM scratch
COPY app /app
# Non-root, like a hardened production image; the kubelet makes /dev/termination-log writable (0666).
USER 65532:65532
EXPOSE 8080
LABEL org.opencontainers.image.title="kubedrill sample app" kubedrill.srchash="$H"
ENTRYPOINT ["/app"]
DOCKERFILE
docker_build() { DOCKER_BUILDKIT=0 docker build --quiet -t "$IMAGE" -t "$REPO:latest" "$TMP" >&2; }
run_step "docker build $IMAGE" docker_build
log "built $IMAGE ($(docker image inspect -f '{{.Size}}' "$IMAGE") bytes)"
echo "$IMAGE"
