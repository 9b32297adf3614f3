#!/usr/bin/env bash
# Build the third-party server image offline: real servers from Debian bookworm packages.
# Usage: build-thirdparty.sh [--print-tag]
#   -> docker image kubedrill/thirdparty:<recipehash>
#   stdout: the image reference; progress goes to stderr.
# What is in it (apps/thirdparty/README.md has the cases that use it):
#   nginx (nginx-light), Apache httpd (apache2-bin), gunicorn (python3-gunicorn) with
#   apps/thirdparty/image/app.py, Node.js (nodejs) with apps/thirdparty/image/server.js,
#   dumb-init (signal rewriting for the graceful configurations) and curl (debugging, and the
#   ground truth's "does it still answer after SIGTERM" check from inside the container).
# Why debootstrap: no registry is reachable here, and the servers must be the distribution's own
# builds, not code written for kubedrill; build-rootfs.sh makes the node image the same way.
# Why a recipe hash tag: kind nodes cache images by reference, so a changed config must get a new
# reference. The hash covers the package list, the files copied in and this script; the manifests
# in apps/thirdparty/workloads/manifests name the tag (tests/integration/test_thirdparty_ground_truth.py
# checks they agree, and says how to update them).
. "$(dirname "$0")/lib.sh"
REPO=kubedrill/thirdparty
PKGS="nginx-light,apache2-bin,python3-gunicorn,nodejs,dumb-init,curl,ca-certificates"
APP_DIR="$KD_ROOT/apps/thirdparty/image"
# The download every server offers: 3 MiB, paced at 256 KiB/s by each server (12 s).
BLOB_BYTES=3145728
PKG_HASH=$(echo "thirdparty $PKGS bookworm minbase v1" | sha256sum | cut -c1-12)
recipe_hash() {
  { echo "$PKG_HASH $BLOB_BYTES"
    ( cd "$KD_ROOT" && find apps/thirdparty/image -type f | LC_ALL=C sort | xargs sha256sum )
    sha256sum < "$KD_ROOT/clusters/images/build-thirdparty.sh"
  } | sha256sum | cut -c1-12
}
H=$(recipe_hash)
IMAGE="$REPO:$H"
if [ "${1:-}" = "--print-tag" ]; then echo "$IMAGE"; exit 0; fi
[ $# -eq 0 ] || die "unknown argument $1; usage: build-thirdparty.sh [--print-tag]"
command -v docker >/dev/null || die "docker is not installed; run clusters/engine/ensure-docker.sh first."
docker info >/dev/null 2>&1 || die "cannot reach the Docker engine (docker info failed); start it with clusters/engine/ensure-docker.sh."
if docker image inspect "$IMAGE" >/dev/null 2>&1; then
  log "third-party image $IMAGE is cached (recipe unchanged)"
  echo "$IMAGE"; exit 0
fi
take_lock thirdparty

# 1. The root filesystem, cached by package list alone: editing a config does not re-debootstrap.
TAR="$KD_CACHE/rootfs/thirdparty-$PKG_HASH.tar"
if [ -f "$TAR" ]; then
  log "third-party rootfs cached: $TAR"
else
  command -v debootstrap >/dev/null || { log "installing debootstrap"; DEBIAN_FRONTEND=noninteractive apt-get install -y -qq debootstrap >/dev/null; }
  [ "$(id -u)" -eq 0 ] || die "debootstrap needs root (it creates device nodes and chroots); run this script as root."
  need_free_gb 2
  MIRROR=$(grep -rhoE 'https?://[^ ]*debian/?$|https?://deb\.debian\.org/debian' /etc/apt/sources.list /etc/apt/sources.list.d/ 2>/dev/null | grep -v security | head -1 || true)
  MIRROR="${KUBEDRILL_DEBIAN_MIRROR:-${MIRROR:-http://deb.debian.org/debian}}"
  DIR="$KD_CACHE/rootfs/thirdparty-$PKG_HASH.d"
  LOGF="$KD_CACHE/rootfs/thirdparty-$PKG_HASH.log"
  rm -rf "$DIR"; mkdir -p "$DIR"
  debootstrap_rootfs() {
    debootstrap --variant=minbase --include="$PKGS" bookworm "$DIR" "$MIRROR" > "$LOGF" 2>&1 \
      || { tail -20 "$LOGF" >&2; echo "full log: $LOGF (is $MIRROR reachable? set KUBEDRILL_DEBIAN_MIRROR to another mirror)" >&2; return 1; }
  }
  run_step "debootstrap third-party rootfs ($PKGS) from $MIRROR" debootstrap_rootfs
  # Size: nothing here is read at run time (package caches, manuals, translations).
  rm -rf "$DIR"/var/cache/apt/archives/*.deb "$DIR"/var/cache/apt/*.bin "$DIR"/var/lib/apt/lists/* \
    "$DIR"/usr/share/doc/* "$DIR"/usr/share/man/* "$DIR"/usr/share/info/* "$DIR"/usr/share/locale/* \
    "$DIR"/var/log/*.log "$DIR"/var/log/apt/*
  tar -C "$DIR" --numeric-owner -cf "$TAR.tmp" . && mv "$TAR.tmp" "$TAR"
  rm -rf "$DIR"
  log "third-party rootfs: $TAR ($(du -h "$TAR" | cut -f1))"
fi

# 2. docker import the rootfs (docker import cannot COPY, so the app files go on in step 3).
BASE="$REPO-rootfs:$PKG_HASH"
docker image inspect "$BASE" >/dev/null 2>&1 || run_step "docker import $BASE" sh -c "docker import - '$BASE' < '$TAR' >/dev/null"

# 3. The app files and configs on top, in a one-line build on the local image (nothing is pulled;
#    the legacy builder because BuildKit may try to fetch its frontend).
TMP=$(mktemp -d "${TMPDIR:-/tmp}/kd-thirdparty.XXXXXX")
trap 'rm -rf "$TMP"' EXIT
mkdir -p "$TMP/srv/www"
cp -R "$APP_DIR"/. "$TMP/srv/"
printf 'ok\n' > "$TMP/srv/www/healthz"
head -c "$BLOB_BYTES" /dev/zero > "$TMP/srv/www/blob.bin"
cat > "$TMP/Dockerfile" <<DOCKERFILE
FROM $BASE
COPY srv/ /srv/thirdparty/
# Apache's pid file and runtime directory (the apache2 package would make it; apache2-bin does not).
RUN mkdir -p /run/apache2 && chmod -R a+rX /srv/thirdparty
ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin LANG=C.UTF-8
WORKDIR /srv/thirdparty
EXPOSE 8080
LABEL org.opencontainers.image.title="kubedrill third-party servers (Debian bookworm)" kubedrill.recipehash="$H"
CMD ["nginx", "-c", "/srv/thirdparty/nginx.conf"]
DOCKERFILE
docker_build() { DOCKER_BUILDKIT=0 docker build --quiet -t "$IMAGE" "$TMP" >&2; }
run_step "docker build $IMAGE" docker_build
log "built $IMAGE ($(docker image inspect -f '{{.Size}}' "$IMAGE") bytes)"
echo "$IMAGE"
