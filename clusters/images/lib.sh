# Shared helpers for the offline build recipes. Sourced, never run.
# Why bash: these recipes drive go, debootstrap, docker and ctr; a shell is the shortest honest glue.
set -euo pipefail
KD_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
# shellcheck source=../versions.env
. "$KD_ROOT/clusters/versions.env"
KD_CACHE="${KUBEDRILL_CACHE:-$HOME/.cache/kubedrill}"
mkdir -p "$KD_CACHE"
_kd_t0=$(date +%s)
log() { printf '[kubedrill build %4ss] %s\n' "$(( $(date +%s) - _kd_t0 ))" "$*" >&2; }
die() { printf '[kubedrill build] ERROR: %s\n' "$*" >&2; exit 1; }
# run_step NAME CMD...: run a long command, printing a heartbeat every 30 s so CI logs show progress.
run_step() {
  local name="$1"; shift
  local start; start=$(date +%s)
  log "start: $name"
  ( while sleep 30; do log "  ... $name still running ($(( $(date +%s) - start ))s)"; done ) &
  local hb=$!
  local rc=0
  "$@" || rc=$?
  kill "$hb" 2>/dev/null || true; wait "$hb" 2>/dev/null || true
  [ "$rc" -eq 0 ] || die "$name failed (exit $rc)"
  log "done:  $name in $(( $(date +%s) - start ))s"
}
# done_marker DIR: a stamp written only after a build step fully succeeded; its presence means "cached".
is_done() { [ -f "$1/.kubedrill-done" ]; }
mark_done() { date -u +%FT%TZ > "$1/.kubedrill-done"; }
need_free_gb() {
  local need="$1" avail
  avail=$(df -Pk "$KD_CACHE" | awk 'NR==2{print int($4/1048576)}')
  [ "$avail" -ge "$need" ] || die "need ${need} GiB free under $KD_CACHE for this build, only ${avail} GiB available. Free space or set KUBEDRILL_CACHE to a bigger disk."
}
# take_lock NAME: serialize concurrent builds of the same thing (parallel test sessions, xdist).
# The lock is held until the script exits.
take_lock() {
  exec {KD_LOCK_FD}>"$KD_CACHE/.lock-$1"
  if ! flock -n "$KD_LOCK_FD"; then
    log "waiting for another build of $1 to finish ..."
    flock "$KD_LOCK_FD"
  fi
}
