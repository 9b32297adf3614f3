#!/usr/bin/env bash
# Build the in-cluster load image offline: Debian bookworm's python3 and a venv with locust.
# Usage: build-locust.sh [--print-tag]
#   -> docker image kubedrill/locust:<recipehash>
#   stdout: the image reference; progress goes to stderr.
# What is in it: python3 from Debian packages and /opt/locust, a venv with locust $LOCUST_VERSION
# (clusters/versions.env) installed from wheels downloaded on this host with pip (PyPI or the
# host's pip find-links), nothing else. The locustfile is NOT in the image:
# kubedrill.load.incluster ships kubedrill/load/locustfile.py and requestlog.py to the pods as a
# ConfigMap, so a change to them needs no rebuild and no new tag.
# Why debootstrap: no registry is reachable here (build-thirdparty.sh builds its servers the same way).
# Why wheels from the host: the build container gets no network; pip on the host reaches PyPI.
# Why a recipe hash tag: kind nodes cache images by reference, so a changed recipe must get a new one.
# The hash covers the package list, the locust version and this script.
. "$(dirname "$0")/lib.sh"
REPO=kubedrill/locust
PKGS="python3,python3-venv,ca-certificates"
PY=3.11  # bookworm's python3; the wheels are chosen for it
PKG_HASH=$(echo "locust $PKGS bookworm minbase v1" | sha256sum | cut -c1-12)
recipe_hash() {
  { echo "$PKG_HASH locust==$LOCUST_VERSION cp${PY/./}"
    sha256sum < "$KD_ROOT/clusters/images/build-locust.sh"
  } | sha256sum | cut -c1-12
}
H=$(recipe_hash)
IMAGE="$REPO:$H"
if [ "${1:-}" = "--print-tag" ]; then echo "$IMAGE"; exit 0; fi
[ $# -eq 0 ] || die "unknown argument $1; usage: build-locust.sh [--print-tag]"
command -v docker >/dev/null || die "docker is not installed; run clusters/engine/ensure-docker.sh first."
docker info >/dev/null 2>&1 || die "cannot reach the Docker engine (docker info failed); start it with clusters/engine/ensure-docker.sh."
if docker image inspect "$IMAGE" >/dev/null 2>&1; then
  log "locust image $IMAGE is cached (recipe unchanged)"
  echo "$IMAGE"; exit 0
fi
take_lock locust

# 1. The root filesystem, cached by package list alone.
TAR="$KD_CACHE/rootfs/locust-$PKG_HASH.tar"
if [ -f "$TAR" ]; then
  log "locust rootfs cached: $TAR"
else
  command -v debootstrap >/dev/null || { log "installing debootstrap"; DEBIAN_FRONTEND=noninteractive apt-get install -y -qq debootstrap >/dev/null; }
  [ "$(id -u)" -eq 0 ] || die "debootstrap needs root (it creates device nodes and chroots); run this script as root."
  need_free_gb 1
  MIRROR=$(grep -rhoE 'https?://[^ ]*debian/?$|https?://deb\.debian\.org/debian' /etc/apt/sources.list /etc/apt/sources.list.d/ 2>/dev/null | grep -v security | head -1 || true)
  MIRROR="${KUBEDRILL_DEBIAN_MIRROR:-${MIRROR:-http://deb.debian.org/debian}}"
  DIR="$KD_CACHE/rootfs/locust-$PKG_HASH.d"
  LOGF="$KD_CACHE/rootfs/locust-$PKG_HASH.log"
  rm -rf "$DIR"; mkdir -p "$DIR" "$KD_CACHE/rootfs"
  debootstrap_rootfs() {
    debootstrap --variant=minbase --include="$PKGS" bookworm "$DIR" "$MIRROR" > "$LOGF" 2>&1 \
      || { tail -20 "$LOGF" >&2; echo "full log: $LOGF (is $MIRROR reachable? set KUBEDRILL_DEBIAN_MIRROR to another mirror)" >&2; return 1; }
  }
  run_step "debootstrap locust rootfs ($PKGS) from $MIRROR" debootstrap_rootfs
  rm -rf "$DIR"/var/cache/apt/archives/*.deb "$DIR"/var/cache/apt/*.bin "$DIR"/var/lib/apt/lists/* \
    "$DIR"/usr/share/doc/* "$DIR"/usr/share/man/* "$DIR"/usr/share/info/* "$DIR"/usr/share/locale/* \
    "$DIR"/var/log/*.log "$DIR"/var/log/apt/*
  tar -C "$DIR" --numeric-owner -cf "$TAR.tmp" . && mv "$TAR.tmp" "$TAR"
  rm -rf "$DIR"
  log "locust rootfs: $TAR ($(du -h "$TAR" | cut -f1))"
fi

# 2. locust and its dependencies as binary wheels for the image's python (cached per version).
WHEELS="$KD_CACHE/wheels/locust-$LOCUST_VERSION-cp${PY/./}"
if is_done "$WHEELS"; then
  log "locust wheels cached: $WHEELS"
else
  PIP="${KUBEDRILL_PIP:-python3 -m pip}"
  rm -rf "$WHEELS"; mkdir -p "$WHEELS"
  pip_download() {
    # shellcheck disable=SC2086
    $PIP download --quiet --dest "$WHEELS" --only-binary=:all: --python-version "$PY" --implementation cp \
      --platform manylinux_2_28_x86_64 --platform manylinux_2_26_x86_64 --platform manylinux_2_24_x86_64 \
      --platform manylinux2014_x86_64 --platform manylinux2010_x86_64 --platform manylinux1_x86_64 \
      "locust==$LOCUST_VERSION" >&2 \
      || { echo "pip download of locust==$LOCUST_VERSION failed: is PyPI reachable from this host (pip config list)? Set KUBEDRILL_PIP to a pip that is." >&2; return 1; }
  }
  run_step "pip download locust==$LOCUST_VERSION wheels for cp${PY/./}" pip_download
  mark_done "$WHEELS"
fi

# 3. docker import the rootfs.
BASE="$REPO-rootfs:$PKG_HASH"
docker image inspect "$BASE" >/dev/null 2>&1 || run_step "docker import $BASE" sh -c "docker import - '$BASE' < '$TAR' >/dev/null"

# 4. The venv on top, installed from the wheels alone (--no-index: the build container needs no network;
#    the legacy builder because BuildKit may try to fetch its frontend).
TMP=$(mktemp -d "${TMPDIR:-/tmp}/kd-locust.XXXXXX")
trap 'rm -rf "$TMP"' EXIT
mkdir -p "$TMP/wheels"
cp "$WHEELS"/*.whl "$TMP/wheels/"
cat > "$TMP/Dockerfile" <<DOCKERFILE
FROM $BASE
COPY wheels/ /tmp/wheels/
RUN python3 -m venv /opt/locust \
 && /opt/locust/bin/pip install --quiet --no-index --no-cache-dir --find-links /tmp/wheels "locust==$LOCUST_VERSION" \
 && rm -rf /tmp/wheels \
 && /opt/locust/bin/python -c "import locust, gevent, zmq; print(locust.__version__)" \
 && mkdir -p /kd/out && chmod 1777 /kd/out
ENV PATH=/opt/locust/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin LANG=C.UTF-8 PYTHONUNBUFFERED=1
WORKDIR /kd
LABEL org.opencontainers.image.title="kubedrill in-cluster locust (Debian bookworm, locust $LOCUST_VERSION)" kubedrill.recipehash="$H"
CMD ["locust", "--version"]
DOCKERFILE
docker_build() { DOCKER_BUILDKIT=0 docker build --quiet -t "$IMAGE" "$TMP" >&2; }
run_step "docker build $IMAGE" docker_build
log "built $IMAGE ($(docker image inspect -f '{{.Size}}' "$IMAGE") bytes)"
echo "$IMAGE"
