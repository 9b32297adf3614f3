#!/usr/bin/env bash
# Build etcd, etcdctl and etcdutl of one release from the Go module proxy, and a FROM-scratch image.
# Usage: build-etcd.sh [vX.Y.Z]  (default: ETCD_VERSION from clusters/versions.env)
#   -> $KD_CACHE/etcd/vX.Y.Z/bin/{etcd,etcdctl,etcdutl}
#   -> docker images kubedrill/etcd:vX.Y.Z and registry.k8s.io/etcd:X.Y.Z-0 (the tag kubeadm asks for)
# Why a wrapper module: etcd's own go.mod files carry `replace ../api` lines, so `go install pkg@v`
# refuses them; a module that merely *requires* the three main modules at vX.Y.Z resolves cleanly.
# Why FROM scratch: no registry is reachable, and scratch needs no pull; the binaries are static.
# Idempotent: each step leaves a done-marker; a second run only re-checks the image (seconds).
. "$(dirname "$0")/lib.sh"
V="${1:-$ETCD_VERSION}"
case "$V" in v3.*) ;; *) die "expected an etcd version like v3.6.5, got '$V'";; esac
OUT="$KD_CACHE/etcd/$V"
BIN="$OUT/bin"
IMAGE="kubedrill/etcd:$V"
K8S_TAG="registry.k8s.io/etcd:${V#v}-0"

build_binaries() {
  command -v go >/dev/null || die "go is not installed; install Go >= 1.24 (bookworm's golang-go is too old)."
  need_free_gb 2
  local mod="$OUT/mod" m
  mkdir -p "$mod" "$BIN"
  cd "$mod"
  # Say which module is missing up front, instead of a `go mod tidy` resolution error.
  for m in server etcdctl etcdutl; do
    # From / so that no go.mod (ours from a failed attempt, or the caller's) takes part.
    if ! (cd / && go list -m "go.etcd.io/etcd/$m/v3@$V" >/dev/null 2>&1); then
      local have
      have=$(cd / && go list -m -versions "go.etcd.io/etcd/$m/v3" 2>/dev/null | cut -d' ' -f2- | tr ' ' '\n' | tail -5 | tr '\n' ' ' || true)
      die "go.etcd.io/etcd/$m/v3@$V is not available from the Go module proxy ($(go env GOPROXY)); it lists: ${have:-no versions}. Pick a listed version or point GOPROXY at a proxy that has it."
    fi
  done
  {
    echo "module kubedrill.local/etcdbuild"
    echo "go 1.24"
    echo "require ("
    echo "	go.etcd.io/etcd/server/v3 $V"
    echo "	go.etcd.io/etcd/etcdctl/v3 $V"
    echo "	go.etcd.io/etcd/etcdutl/v3 $V"
    echo ")"
  } > go.mod
  # The three main packages are the module roots (checked for v3.6: server/main.go, etcdctl/main.go,
  # etcdutl/main.go). tools.go makes `go mod tidy` keep every dependency they need.
  cat > tools.go <<'TOOLS'
//go:build tools

package tools

import (
	_ "go.etcd.io/etcd/etcdctl/v3"
	_ "go.etcd.io/etcd/etcdutl/v3"
	_ "go.etcd.io/etcd/server/v3"
)
TOOLS
  run_step "resolve go.etcd.io/etcd $V modules" env GOFLAGS=-mod=mod go mod tidy
  export CGO_ENABLED=0
  local ld="-s -w -X go.etcd.io/etcd/api/v3/version.GitSHA=kubedrill-from-module-proxy"
  # Built one at a time: all three package paths end in /v3, so `-o dir/` would name them alike.
  run_step "compile etcd $V" go build -trimpath -ldflags "$ld" -o "$BIN/etcd" go.etcd.io/etcd/server/v3
  run_step "compile etcdctl $V" go build -trimpath -ldflags "$ld" -o "$BIN/etcdctl" go.etcd.io/etcd/etcdctl/v3
  run_step "compile etcdutl $V" go build -trimpath -ldflags "$ld" -o "$BIN/etcdutl" go.etcd.io/etcd/etcdutl/v3
  # Outputs are captured first: `cmd | grep -q` would fail under pipefail when grep exits early.
  local tool out
  for tool in "etcd --version" "etcdctl version" "etcdutl version"; do
    out=$("$BIN/${tool%% *}" ${tool#* } 2>&1)
    out=${out%%$'\n'*}
    case "$out" in *"ersion: ${V#v}") ;; *) die "built ${tool%% *} reports '$out', expected version ${V#v}";; esac
  done
  mark_done "$OUT"
}

build_image() {
  command -v docker >/dev/null || die "docker CLI not found; run clusters/engine/ensure-docker.sh first."
  docker info >/dev/null 2>&1 || die "no Docker engine answers; run clusters/engine/ensure-docker.sh first."
  local ctx
  ctx="$(mktemp -d)"
  cp "$BIN/etcd" "$BIN/etcdctl" "$BIN/etcdutl" "$ctx/"
  mkdir -p "$ctx/var/lib/etcd" "$ctx/tmp"
  cat > "$ctx/Dockerfile" <<DOCKERFILE
FROM scratch
COPY etcd etcdctl etcdutl /usr/local/bin/
COPY var /var
COPY tmp /tmp
ENV PATH=/usr/local/bin
# The data dir kubeadm uses; members mount their own dir over it.
WORKDIR /var/lib/etcd
EXPOSE 2379 2380
LABEL org.opencontainers.image.title="etcd" org.opencontainers.image.version="$V" \
      kubedrill.built-from="go.etcd.io/etcd/server/v3@$V (module proxy)" \\
      kubedrill.etcd-sha="$1"
ENTRYPOINT ["/usr/local/bin/etcd"]
DOCKERFILE
  run_step "docker build $IMAGE (FROM scratch)" docker build -q -t "$IMAGE" "$ctx"
  rm -rf "$ctx"
}

if is_done "$OUT" && [ -x "$BIN/etcd" ]; then
  log "etcd $V binaries cached in $BIN"
else
  build_binaries
fi

# The sha label ties the image to the cached binaries, so a stale image is rebuilt, never reused.
have_sha=$(cat "$BIN/etcd" "$BIN/etcdctl" "$BIN/etcdutl" | sha256sum | cut -c1-16)
image_sha=$(docker image inspect -f '{{index .Config.Labels "kubedrill.etcd-sha"}}' "$IMAGE" 2>/dev/null || true)
if [ "$image_sha" = "$have_sha" ]; then
  log "image $IMAGE up to date"
else
  build_image "$have_sha"
  log "image $IMAGE built"
fi
docker tag "$IMAGE" "$K8S_TAG"
got=$(docker run --rm --network none "$IMAGE" --version 2>&1)
got=${got%%$'\n'*}
case "$got" in *"${V#v}"*) ;; *) die "image $IMAGE reports '$got', expected ${V#v}";; esac
log "ok: $IMAGE (also tagged $K8S_TAG): $got"
