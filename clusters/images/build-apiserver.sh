#!/usr/bin/env bash
# Build kube-apiserver (only) of one or more versions from the Go module proxy, for preflight's
# envtest-style API servers, and find an etcd for them.
# Usage: build-apiserver.sh [vX.Y.Z ...]   (default: K8S_VERSION and PREFLIGHT_TARGETS from versions.env)
#   -> $KD_CACHE/apiserver/vX.Y.Z/bin/kube-apiserver
#   -> etcd: $KD_CACHE/etcd/$ETCD_VERSION/bin/etcd (build-etcd.sh's) if present, else the server alone
#      in $KD_CACHE/apiserver/etcd-$ETCD_VERSION/bin/etcd
# The last stdout line of each version is `kube-apiserver=PATH etcd=PATH` (kubedrill.preflight reads it).
# Why only kube-apiserver: preflight needs no kubelet, scheduler or controller; one binary of a new
# minor costs a third of the seven-binary build. A version whose full build-k8s-binaries.sh output
# is cached already is reused as is (its kube-apiserver is the same build).
. "$(dirname "$0")/lib.sh"
if [ $# -gt 1 ]; then
  for v in "$@"; do bash "$0" "$v" || exit $?; done
  exit 0
fi
if [ $# -eq 0 ]; then
  for v in "$K8S_VERSION" ${PREFLIGHT_TARGETS//,/ }; do bash "$0" "$v" || exit $?; done
  exit 0
fi
V="$1"
[[ "$V" =~ ^v1\.[0-9]+\.[0-9]+$ ]] || die "expected a Kubernetes version like v1.35.4, got '$V'"

find_etcd() {
  local full="$KD_CACHE/etcd/$ETCD_VERSION"
  if is_done "$full" && [ -x "$full/bin/etcd" ]; then echo "$full/bin/etcd"; return 0; fi
  local own="$KD_CACHE/apiserver/etcd-$ETCD_VERSION"
  if is_done "$own" && [ -x "$own/bin/etcd" ]; then echo "$own/bin/etcd"; return 0; fi
  (
    take_lock "apiserver-etcd-$ETCD_VERSION"
    if is_done "$own"; then exit 0; fi
    command -v go >/dev/null || die "go is not installed; run clusters/engine/bootstrap-host.sh (Go >= 1.24)"
    mkdir -p "$own/mod" "$own/bin"
    cd "$own/mod"
    printf 'module kubedrill.local/etcdserver\ngo 1.24\nrequire go.etcd.io/etcd/server/v3 %s\n' "$ETCD_VERSION" > go.mod
    printf '//go:build tools\n\npackage tools\n\nimport _ "go.etcd.io/etcd/server/v3"\n' > tools.go
    run_step "resolve go.etcd.io/etcd/server/v3@$ETCD_VERSION" env GOFLAGS=-mod=mod go mod tidy >&2
    run_step "compile etcd $ETCD_VERSION (server only)" env CGO_ENABLED=0 go build -trimpath \
      -ldflags "-s -w" -o "$own/bin/etcd" go.etcd.io/etcd/server/v3 >&2
    mark_done "$own"
  ) >&2 || exit $?
  echo "$own/bin/etcd"
}

OUT="$KD_CACHE/apiserver/$V"
FULL="$KD_CACHE/k8s/$V"
emit() {
  local etcd
  etcd=$(find_etcd) || die "no etcd for the preflight API server"
  echo "kube-apiserver=$1 etcd=$etcd"
}
if is_done "$FULL" && [ -x "$FULL/bin/kube-apiserver" ]; then
  log "kube-apiserver $V: reusing the full Kubernetes build in $FULL/bin"
  emit "$FULL/bin/kube-apiserver"; exit 0
fi
take_lock "apiserver-$V"
if is_done "$OUT" && [ -x "$OUT/bin/kube-apiserver" ]; then
  log "kube-apiserver $V cached in $OUT/bin"
  emit "$OUT/bin/kube-apiserver"; exit 0
fi
command -v go >/dev/null || die "go is not installed; run clusters/engine/bootstrap-host.sh (Go >= 1.24)"
# Say up front when the proxy does not serve the version, with what it does serve.
if ! (cd / && go list -m "k8s.io/kubernetes@$V" >/dev/null 2>&1); then
  have=$(cd / && go list -m -versions k8s.io/kubernetes 2>/dev/null | tr ' ' '\n' | grep -E '^v1\.[0-9]+\.[0-9]+$' | tail -8 | tr '\n' ' ' || true)
  die "kubedrill cannot build kube-apiserver $V: the Go module proxy ($(go env GOPROXY)) does not serve k8s.io/kubernetes@$V. It serves: ${have:-no versions}. Pick one of those."
fi
STAGING_V="v0.${V#v1.}"
if ! (cd / && go list -m "k8s.io/api@$STAGING_V" >/dev/null 2>&1); then
  die "kubedrill cannot build kube-apiserver $V: the Go module proxy serves k8s.io/kubernetes@$V but not its staging module k8s.io/api@$STAGING_V"
fi
need_free_gb 3
MOD="$OUT/mod"; mkdir -p "$MOD" "$OUT/bin"
cd "$MOD"
run_step "download k8s.io/kubernetes@$V" go mod download -json "k8s.io/kubernetes@$V" > "$OUT/kubernetes.json"
SRC=$(python3 -c 'import json,sys;print(json.load(open(sys.argv[1]))["Dir"])' "$OUT/kubernetes.json")
GOMODV=$(awk '/^go [0-9]/{print $2; exit}' "$SRC/go.mod")
{
  echo "module kubedrill.local/apiserverbuild"
  echo "go $GOMODV"
  echo "require k8s.io/kubernetes $V"
  grep -oE '^\s*k8s.io/[a-z0-9-]+ => ./staging' "$SRC/go.mod" | awk -v sv="$STAGING_V" '{print "replace " $1 " => " $1 " " sv}'
} > go.mod
cat > tools.go <<'TOOLS'
//go:build tools

package tools

import _ "k8s.io/kubernetes/cmd/kube-apiserver"
TOOLS
run_step "resolve modules for kube-apiserver $V" env GOFLAGS=-mod=mod go mod tidy -e
MINOR=$(echo "$V" | cut -d. -f2)
LD="-s -w"
for p in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
  LD="$LD -X '$p.gitVersion=$V' -X '$p.gitMajor=1' -X '$p.gitMinor=$MINOR' -X '$p.gitCommit=kubedrill-from-module-proxy' -X '$p.gitTreeState=clean' -X '$p.buildDate=1970-01-01T00:00:00Z'"
done
export CGO_ENABLED=0
run_step "compile kube-apiserver $V (measured cold on 2 cores: 193-216 s)" \
  go build -trimpath -tags=selinux,notest -ldflags "$LD" -o "$OUT/bin/kube-apiserver" k8s.io/kubernetes/cmd/kube-apiserver
got=$("$OUT/bin/kube-apiserver" --version 2>&1 || true)
case "$got" in *"$V"*) ;; *) die "built kube-apiserver reports '$got', expected $V";; esac
rm -rf "$MOD/vendor"
mark_done "$OUT"
log "kube-apiserver $V in $OUT/bin"
emit "$OUT/bin/kube-apiserver"
