#!/usr/bin/env bash
# Build the table-based deprecated-API checkers preflight is benchmarked against, from the Go module
# proxy: pluto (github.com/fairwindsops/pluto/v5) and kubent (github.com/doitintl/kube-no-trouble).
# Usage: build-table-tools.sh [pluto|kubent ...]  -> $KD_CACHE/tools/<name>-<version>/<name>
# A tool the proxy does not serve is reported (exit 3 for it alone) instead of failing the others,
# so the benchmark can say "not available" next to the tools that are.
# Why GONOSUMDB for pluto's own module: the proxy serves github.com/fairwindsops/pluto/v5 but its
# checksum-database lookup answers 404, so `go install` refuses it; the exemption covers that one
# module (its dependencies are still verified). pluto is only run by the benchmark, on the labelled
# files; it is never part of a kubedrill run.
. "$(dirname "$0")/lib.sh"
command -v go >/dev/null || die "go is not installed; run clusters/engine/bootstrap-host.sh (Go >= 1.24)"
build() {
  local name="$1" mod="$2" pkg="$3" ver="$4" out="$KD_CACHE/tools/$1-$4" nosum="${5:-}"
  if is_done "$out" && [ -x "$out/$name" ]; then log "$name $ver cached in $out"; echo "$name=$out/$name"; return 0; fi
  if ! (cd / && go list -m "$mod@$ver" >/dev/null 2>&1); then
    log "$name: the Go module proxy ($(go env GOPROXY)) does not serve $mod@$ver: not built"
    echo "$name=unavailable:$mod@$ver is not served by the Go module proxy"
    return 3
  fi
  take_lock "tool-$name-$ver"
  mkdir -p "$out"
  # A wrapper module that requires the tool, as build-etcd.sh does: `go install pkg@v` also asks the
  # proxy for the module's version list (for deprecation notices), which this proxy refuses (403).
  mkdir -p "$out/mod"
  printf 'module kubedrill.local/%sbuild\ngo 1.24\nrequire %s %s\n' "$name" "$mod" "$ver" > "$out/mod/go.mod"
  printf '//go:build tools\n\npackage tools\n\nimport _ "%s"\n' "$pkg" > "$out/mod/tools.go"
  (cd "$out/mod" && run_step "resolve $mod@$ver" env GONOSUMDB="$nosum" GOFLAGS=-mod=mod go mod tidy) || exit 1
  (cd "$out/mod" && run_step "compile $name $ver" env CGO_ENABLED=0 GONOSUMDB="$nosum" GOFLAGS="-buildvcs=false" \
    go build -trimpath -ldflags "-s -w" -o "$out/$name" "$pkg") || exit 1
  "$out/$name" version >/dev/null 2>&1 || "$out/$name" --help >/dev/null 2>&1 || die "built $name does not run"
  mark_done "$out"
  echo "$name=$out/$name"
}
want=("$@"); [ ${#want[@]} -gt 0 ] || want=(pluto kubent)
rc=0
for t in "${want[@]}"; do
  case "$t" in
    pluto)  build pluto github.com/fairwindsops/pluto/v5 github.com/fairwindsops/pluto/v5/cmd/pluto "$PLUTO_VERSION" github.com/fairwindsops/pluto || rc=$? ;;
    kubent) build kubent github.com/doitintl/kube-no-trouble github.com/doitintl/kube-no-trouble/cmd/kubent "$KUBENT_VERSION" || rc=$? ;;
    *) die "unknown tool '$t' (pluto|kubent)" ;;
  esac
done
exit $rc
