#!/usr/bin/env bash
# Every container image a kind node of one Kubernetes version needs, built locally under the exact
# names kubeadm and kind expect (nothing is pulled), then saved as tarballs for the node image.
# Usage: build-images.sh [vX.Y.Z]  -> $KD_CACHE/images/vX.Y.Z/*.tar (+ the images in the local engine)
. "$(dirname "$0")/lib.sh"
V="${1:-$K8S_VERSION}"
take_lock "images-$V"
HERE="$(cd "$(dirname "$0")" && pwd)"
BIN="$KD_CACHE/k8s/$V/bin"
bash "$HERE/build-k8s-binaries.sh" "$V"
OUT="$KD_CACHE/images/$V"
SELF_SUM=$(cat "$0" "$HERE/kindnet/kindnet.sh" "$HERE/iptables-wrapper" | sha256sum | cut -c1-12)
if is_done "$OUT" && [ "$(cat "$OUT/.recipe" 2>/dev/null)" = "$SELF_SUM" ]; then log "images for $V cached in $OUT"; exit 0; fi
rm -rf "$OUT"; mkdir -p "$OUT"
WORK=$(mktemp -d "$KD_CACHE/img-build.XXXXXX"); trap 'rm -rf "$WORK"' EXIT

# What this kubeadm asks for is the only source of truth for tags.
mapfile -t WANT < <("$BIN/kubeadm" config images list --kubernetes-version "$V")
tag_of() { printf '%s\n' "${WANT[@]}" | grep "/$1:" | head -1; }
PAUSE_TAG=$(tag_of pause); ETCD_TAG=$(tag_of etcd); COREDNS_TAG=$(tag_of coredns)
ETCD_V="v$(echo "${ETCD_TAG##*:}" | sed 's/-0$//')"
COREDNS_V="${COREDNS_TAG##*:}"

# docker build helper: image from a generated Dockerfile and a context dir (FROM scratch or a local base).
build_ctx() { local tag="$1" ctx="$2"; docker build -q -t "$tag" "$ctx" >/dev/null || die "docker build $tag failed"; }

# Debian userland for images that need iptables/haproxy.
NET_TAR=$(bash "$HERE/build-rootfs.sh" net | tail -1)
NET_IMG="kubedrill/net-base:$(basename "$NET_TAR" .tar | cut -d- -f2)"
docker image inspect "$NET_IMG" >/dev/null 2>&1 || run_step "import $NET_IMG" sh -c "docker import - '$NET_IMG' < '$NET_TAR' >/dev/null"

# pause: built from the C source shipped in the k8s.io/kubernetes module.
mkdir -p "$WORK/pause"
command -v gcc >/dev/null || die "gcc is needed to build pause; apt-get install gcc libc6-dev"
gcc -Os -Wall -Werror -static -DVERSION="${PAUSE_TAG##*:}" -o "$WORK/pause/pause" "$KD_CACHE/k8s/$V/pause.c" \
  || die "building pause failed (static glibc needed: apt-get install libc6-dev)"
printf 'FROM scratch\nCOPY pause /pause\nUSER 65535:65535\nENTRYPOINT ["/pause"]\n' > "$WORK/pause/Dockerfile"
build_ctx "$PAUSE_TAG" "$WORK/pause"
docker tag "$PAUSE_TAG" "registry.k8s.io/pause:$PAUSE_VERSION"   # containerd's sandbox_image in kind's config

# control-plane components: static binaries FROM scratch (kubeadm's manifests call them by name).
for c in kube-apiserver kube-controller-manager kube-scheduler; do
  mkdir -p "$WORK/$c"; cp "$BIN/$c" "$WORK/$c/"
  printf 'FROM scratch\nENV PATH=/usr/local/bin:/usr/bin:/bin\nCOPY %s /usr/local/bin/%s\nENTRYPOINT ["/usr/local/bin/%s"]\n' "$c" "$c" "$c" > "$WORK/$c/Dockerfile"
  build_ctx "registry.k8s.io/$c:$V" "$WORK/$c"
done

# kube-proxy needs iptables/conntrack of the same backend as the node: Debian userland + wrapper.
mkdir -p "$WORK/kube-proxy"; cp "$BIN/kube-proxy" "$HERE/iptables-wrapper" "$WORK/kube-proxy/"
cat > "$WORK/kube-proxy/Dockerfile" <<DOCKER
FROM $NET_IMG
COPY kube-proxy /usr/local/bin/kube-proxy
COPY iptables-wrapper /usr/sbin/iptables-wrapper
RUN for c in iptables iptables-save iptables-restore ip6tables ip6tables-save ip6tables-restore; do ln -sf /usr/sbin/iptables-wrapper /usr/sbin/\$c; done
DOCKER
build_ctx "registry.k8s.io/kube-proxy:$V" "$WORK/kube-proxy"

# etcd at the version kubeadm lists.
# The static pod only needs the server; when the proxy lacks etcdctl/etcdutl of that release
# (seen: etcdutl v3.5.24), build the server alone.
etcd_server_only() {
  local v="$1" d="$KD_CACHE/etcd/$1-server"
  if [ ! -x "$d/bin/etcd" ]; then
    mkdir -p "$d/mod" "$d/bin"
    ( cd "$d/mod"
      printf 'module kubedrill.local/etcdserver\ngo 1.24\nrequire go.etcd.io/etcd/server/v3 %s\n' "$v" > go.mod
      printf '//go:build tools\n\npackage tools\n\nimport _ "go.etcd.io/etcd/server/v3"\n' > tools.go
      GOFLAGS=-mod=mod go mod tidy && CGO_ENABLED=0 go build -trimpath -ldflags "-s -w" -o "$d/bin/etcd" go.etcd.io/etcd/server/v3 ) \
      || die "building etcd server $v failed"
  fi
  mkdir -p "$WORK/etcd"; cp "$d/bin/etcd" "$WORK/etcd/"
  printf 'FROM scratch\nENV PATH=/usr/local/bin\nCOPY etcd /usr/local/bin/etcd\nENTRYPOINT ["/usr/local/bin/etcd"]\n' > "$WORK/etcd/Dockerfile"
  build_ctx "$ETCD_TAG" "$WORK/etcd"
}
if docker image inspect "$ETCD_TAG" >/dev/null 2>&1; then
  :
elif bash "$HERE/build-etcd.sh" "$ETCD_V" >&2; then
  docker image inspect "$ETCD_TAG" >/dev/null 2>&1 || docker tag "kubedrill/etcd:$ETCD_V" "$ETCD_TAG"
else
  log "full etcd $ETCD_V toolset not available from the module proxy; building the server only"
  run_step "etcd server $ETCD_V" etcd_server_only "$ETCD_V"
fi

# coredns
bash "$HERE/build-go-tools.sh" "coredns=$COREDNS_V" >&2
mkdir -p "$WORK/coredns"; cp "$KD_CACHE/tools/coredns-$COREDNS_V/coredns" "$WORK/coredns/"
printf 'FROM scratch\nCOPY coredns /coredns\nEXPOSE 53 53/udp\nENTRYPOINT ["/coredns"]\n' > "$WORK/coredns/Dockerfile"
build_ctx "$COREDNS_TAG" "$WORK/coredns"

# kindnet (kubedrill's offline stand-in for kindnetd) and kind's haproxy load balancer.
# haproxy: `-n 8000` overrides the `maxconn 100000` of kind's generated config, which needs ~200k
# file descriptors; newer haproxy (Debian's 2.6) refuses to start where the nofile limit is lower
# (kind's own image ships haproxy 2.2, which only warned).
mkdir -p "$WORK/kindnet"; cp "$HERE/kindnet/kindnet.sh" "$HERE/iptables-wrapper" "$BIN/kubectl" "$WORK/kindnet/"
cat > "$WORK/kindnet/Dockerfile" <<DOCKER
FROM $NET_IMG
COPY kubectl /usr/local/bin/kubectl
COPY kindnet.sh /usr/local/bin/kindnet.sh
RUN chmod 0755 /usr/local/bin/kindnet.sh
COPY iptables-wrapper /usr/sbin/iptables-wrapper
RUN for c in iptables iptables-save iptables-restore ip6tables ip6tables-save ip6tables-restore; do ln -sf /usr/sbin/iptables-wrapper /usr/sbin/\$c; done
ENTRYPOINT ["/usr/local/bin/kindnet.sh"]
DOCKER
KINDNET_TAG="kubedrill/kindnet:$SELF_SUM"
build_ctx "$KINDNET_TAG" "$WORK/kindnet"
echo "$KINDNET_TAG" > "$OUT/kindnet-image"
KIND_DIR=$(go mod download -json "sigs.k8s.io/kind@$KIND_VERSION" | python3 -c 'import json,sys;print(json.load(sys.stdin)["Dir"])')
mkdir -p "$WORK/haproxy"; cp "$KIND_DIR/images/haproxy/haproxy.cfg" "$WORK/haproxy/"
cat > "$WORK/haproxy/Dockerfile" <<DOCKER
FROM $NET_IMG
COPY haproxy.cfg /usr/local/etc/haproxy/haproxy.cfg
STOPSIGNAL SIGUSR1
ENTRYPOINT ["haproxy", "-W", "-db", "-n", "8000", "-f", "/usr/local/etc/haproxy/haproxy.cfg"]
DOCKER
build_ctx "$HAPROXY_IMAGE" "$WORK/haproxy"

# Save what goes inside the node (the LB image stays in the host engine).
save() { local f="$OUT/$2.tar"; docker save "$1" -o "$f.tmp" && mv "$f.tmp" "$f"; }
run_step "save images for $V" bash -c "
  $(declare -f save); OUT='$OUT'
  save '$PAUSE_TAG' pause; save 'registry.k8s.io/pause:$PAUSE_VERSION' pause-kind
  for c in kube-apiserver kube-controller-manager kube-scheduler kube-proxy; do save registry.k8s.io/\$c:$V \$c; done
  save '$ETCD_TAG' etcd; save '$COREDNS_TAG' coredns; save '$KINDNET_TAG' kindnet"
printf '%s\n' "${WANT[@]}" > "$OUT/kubeadm-images.txt"
echo "$SELF_SUM" > "$OUT/.recipe"
mark_done "$OUT"
log "images for $V: $(ls "$OUT"/*.tar | wc -l) tarballs, $(du -sh "$OUT" | cut -f1)"
