#!/usr/bin/env bash
# Build the Go command-line tools kubedrill needs from the Go module proxy: kind, crictl, coredns.
# Usage: build-go-tools.sh [kind|crictl|coredns[=vX.Y.Z] ...]   (default versions: versions.env)   -> $KD_CACHE/tools/<name>-<version>/<name>
. "$(dirname "$0")/lib.sh"
build_one() {
  local name="$1" pkg="$2" ver="$3" out="$KD_CACHE/tools/$1-$3"
  if is_done "$out"; then log "$name $ver cached in $out"; return 0; fi
  mkdir -p "$out"
  run_step "go install $pkg@$ver" env GOBIN="$out" CGO_ENABLED=0 GOFLAGS="-buildvcs=false -trimpath" \
    go install -ldflags "-s -w" "$pkg@$ver"
  mark_done "$out"
}
want=("$@"); [ ${#want[@]} -gt 0 ] || want=(kind crictl coredns)
for t in "${want[@]}"; do
  if [[ "$t" == *=* ]]; then ver="${t#*=}"; t="${t%%=*}"; else ver=""; fi
  case "$t" in
    kind)    build_one kind sigs.k8s.io/kind "$KIND_VERSION" ;;
    crictl)  build_one crictl sigs.k8s.io/cri-tools/cmd/crictl "$CRICTL_VERSION" ;;
    coredns) build_one coredns github.com/coredns/coredns "${ver:-$COREDNS_VERSION}" ;;
    *) die "unknown tool '$t' (kind|crictl|coredns)" ;;
  esac
done
