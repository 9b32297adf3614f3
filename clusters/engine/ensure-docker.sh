#!/usr/bin/env bash
# Make a working Docker engine available, or say exactly why not.
#  1. If `docker info` answers and a privileged container works, do nothing (a normal host).
#  2. Else install Debian's docker.io when no dockerd exists (needs root + apt).
#  3. If the capability bounding set lacks capabilities that Docker < 23 grants to --privileged
#     containers, install the kubedrill-runc wrapper as dockerd's default runtime.
#  4. Start dockerd when it is not running (systemd if it is PID 1, else in the background).
set -euo pipefail
HERE="$(cd "$(dirname "$0")" && pwd)"
CACHE="${KUBEDRILL_CACHE:-$HOME/.cache/kubedrill}"
LOG=/var/log/kubedrill-dockerd.log
say() { echo "[kubedrill engine] $*" >&2; }
die() { echo "[kubedrill engine] ERROR: $*" >&2; exit 1; }

cap_gap() {
  # Prints the number of capabilities up to cap_last_cap that the bounding set lacks.
  local last bnd missing=0 i
  last=$(cat /proc/sys/kernel/cap_last_cap 2>/dev/null || echo 40)
  bnd=$((16#$(awk '/^CapBnd:/{print $2}' /proc/self/status)))
  for ((i = 0; i <= last; i++)); do (( (bnd >> i) & 1 )) || missing=$((missing + 1)); done
  echo "$missing"
}

docker_server_major() { docker version --format '{{.Server.Version}}' 2>/dev/null | cut -d. -f1; }

if ! command -v dockerd >/dev/null 2>&1; then
  if docker info >/dev/null 2>&1; then
    say "a Docker engine answers (no local dockerd binary: remote or rootless engine); using it as is"
    exit 0
  fi
  [ "$(id -u)" = 0 ] || die "no Docker engine and not root, so it cannot be installed. Install Docker (>= 20.10) and start it, or run as root on Debian/Ubuntu."
  command -v apt-get >/dev/null || die "no Docker engine and no apt-get. Install Docker (>= 20.10) with your OS package manager and start it."
  say "installing Debian's docker.io (apt-get) ..."
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq docker.io >/dev/null 2>&1 || {
    apt-get update -qq >/dev/null 2>&1 || true
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq docker.io >/dev/null || die "apt-get install docker.io failed; see the output above. Install Docker yourself and re-run."
  }
fi

need_wrapper=0
if [ "$(cap_gap)" -gt 0 ]; then need_wrapper=1; fi
if [ "$need_wrapper" = 1 ]; then
  dockerd_major=$(dockerd --version | sed -E 's/Docker version ([0-9]+).*/\1/')
  if [ "${dockerd_major:-0}" -ge 23 ]; then need_wrapper=0; fi   # moby#42933 filters caps itself.
fi

changed=0
if [ "$need_wrapper" = 1 ]; then
  [ "$(id -u)" = 0 ] || die "this host's capability bounding set lacks $(cap_gap) capabilities and Docker < 23 will fail privileged containers; configuring the fix needs root."
  WRAP=/usr/local/libexec/kubedrill-runc
  src_sum=$(cat "$HERE/capfilter/main.go" "$HERE/capfilter/go.mod" | sha256sum | cut -c1-16)
  built="$CACHE/engine/kubedrill-runc-$src_sum"
  if [ ! -x "$built" ]; then
    command -v go >/dev/null || die "go is needed to build the runtime wrapper (capfilter); install Go."
    mkdir -p "$CACHE/engine"
    (cd "$HERE/capfilter" && CGO_ENABLED=0 go build -o "$built" .)
  fi
  if ! cmp -s "$built" "$WRAP" 2>/dev/null; then
    mkdir -p "$(dirname "$WRAP")"; install -m 0755 "$built" "$WRAP"; changed=1
  fi
  want='{"runtimes":{"kubedrill-runc":{"path":"/usr/local/libexec/kubedrill-runc"}},"default-runtime":"kubedrill-runc"}'
  if [ ! -f /etc/docker/daemon.json ] || ! grep -q kubedrill-runc /etc/docker/daemon.json; then
    mkdir -p /etc/docker
    if [ -s /etc/docker/daemon.json ]; then
      cp /etc/docker/daemon.json /etc/docker/daemon.json.kubedrill-backup
      python3 - "$want" <<'PY'
import json, sys
cur = json.load(open("/etc/docker/daemon.json"))
cur.update(json.loads(sys.argv[1]))
json.dump(cur, open("/etc/docker/daemon.json", "w"), indent=2)
PY
    else
      echo "$want" > /etc/docker/daemon.json
    fi
    changed=1
    say "capability bounding set lacks $(cap_gap) capabilities: dockerd now uses $WRAP (drops them for privileged containers)"
  fi
fi

start_dockerd() {
  if [ "$(ps -p 1 -o comm= 2>/dev/null)" = systemd ]; then
    systemctl restart docker
  else
    pkill -x dockerd 2>/dev/null && sleep 2 || true
    say "starting dockerd in the background (log: $LOG)"
    # In a session of its own, holding none of its starter's descriptors above 2: an inherited lock
    # or a CI step's pipe would otherwise stay open as long as dockerd runs (seen: a flock held by
    # the shell that ran the bootstrap stayed taken after that shell had exited).
    ( for fd in /proc/$BASHPID/fd/*; do fd=${fd##*/}; [ "$fd" -gt 2 ] && eval "exec $fd>&-" 2>/dev/null; done
      exec setsid dockerd ) </dev/null >"$LOG" 2>&1 &
  fi
  for _ in $(seq 1 60); do docker info >/dev/null 2>&1 && return 0; sleep 1; done
  die "dockerd did not answer within 60 s. Last log lines:
$(tail -20 "$LOG" 2>/dev/null)"
}

# Each kind node runs systemd, which takes inotify instances; the default 128 runs out after a few
# nodes ("Too many open files" and nodes that die at start). kind's known-issues page says the same.
if [ "$(id -u)" = 0 ]; then
  for kv in fs.inotify.max_user_instances=8192 fs.inotify.max_user_watches=1048576; do
    k=${kv%=*}; v=${kv#*=}
    cur=$(sysctl -n "$k" 2>/dev/null || echo 0)
    if [ "$cur" -lt "$v" ]; then sysctl -qw "$kv" 2>/dev/null && say "raised $k from $cur to $v" || say "WARNING: could not raise $k (now $cur); many kind nodes may fail to start"; fi
  done
fi

if ! docker info >/dev/null 2>&1 || [ "$changed" = 1 ]; then
  start_dockerd
fi
say "Docker engine ready: server $(docker version --format '{{.Server.Version}}'), runtime $(docker info --format '{{.DefaultRuntime}}'), cgroup $(docker info --format '{{.CgroupVersion}}')"
