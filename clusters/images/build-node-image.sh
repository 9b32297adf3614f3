#!/usr/bin/env bash
# A kind node image for one Kubernetes version, built offline the way `kind build node-image` does:
# base image + kubeadm/kubelet/kubectl in /usr/bin + /kind/version + CNI manifest + every image
# preloaded into containerd's k8s.io namespace (pinned, so kubelet's image GC keeps them).
# Usage: build-node-image.sh [vX.Y.Z]   -> prints kubedrill/node:vX.Y.Z-<hash>
. "$(dirname "$0")/lib.sh"
V="${1:-$K8S_VERSION}"
take_lock "node-$V"
HERE="$(cd "$(dirname "$0")" && pwd)"
BASE=$(bash "$HERE/build-base-image.sh" | tail -1)
bash "$HERE/build-images.sh" "$V"
BIN="$KD_CACHE/k8s/$V/bin"; IMGS="$KD_CACHE/images/$V"
KINDNET_TAG=$(cat "$IMGS/kindnet-image")
HASH=$(echo "$BASE $(cat "$IMGS/.recipe") $(sha256sum "$HERE/kindnet/default-cni.yaml" "$0" | cut -c1-16 | tr '\n' ' ')" | sha256sum | cut -c1-10)
TAG="kubedrill/node:$V-$HASH"
if docker image inspect "$TAG" >/dev/null 2>&1; then log "node image cached: $TAG"; echo "$TAG"; exit 0; fi
need_free_gb 4
NAME="kubedrill-nodebuild-$$"
cleanup() { docker rm -f "$NAME" >/dev/null 2>&1 || true; }
trap cleanup EXIT
docker run -d --name "$NAME" --label kubedrill.build=node --privileged --entrypoint=sleep "$BASE" infinity >/dev/null
for b in kubeadm kubelet kubectl; do docker cp "$BIN/$b" "$NAME:/usr/bin/$b"; done
docker exec "$NAME" sh -c "echo '$V' > /kind/version && mkdir -p /kind/manifests /kind/images"
sed "s#KINDNET_IMAGE_PLACEHOLDER#$KINDNET_TAG#" "$HERE/kindnet/default-cni.yaml" | docker exec -i "$NAME" sh -c 'cat > /kind/manifests/default-cni.yaml'
# Preload the images: start containerd in the build container and import each tarball.
docker exec -d "$NAME" sh -c 'containerd > /var/log/containerd-build.log 2>&1'
for _ in $(seq 1 30); do docker exec "$NAME" ctr version >/dev/null 2>&1 && break; sleep 1; done
for t in "$IMGS"/*.tar; do
  run_step "import $(basename "$t") into $TAG" sh -c "docker exec -i '$NAME' ctr -n k8s.io images import --label=io.cri-containerd.pinned=pinned --all-platforms --no-unpack --digests - < '$t' >/dev/null"
done
docker exec "$NAME" ctr -n k8s.io images ls -q > "$IMGS/node-image-contents.txt"
while read -r want; do
  grep -qx "$want" "$IMGS/node-image-contents.txt" || die "node image lacks $want (kubeadm needs it)"
done < "$IMGS/kubeadm-images.txt"
docker exec "$NAME" sh -c 'pkill containerd; sleep 1; rm -f /var/log/containerd-build.log'
run_step "commit $TAG" docker commit \
  --change 'ENTRYPOINT [ "/usr/local/bin/entrypoint", "/sbin/init" ]' --change 'CMD []' \
  --change 'LABEL io.x-k8s.kind.version='"$KIND_VERSION" "$NAME" "$TAG"
# Older builds of this version are superseded; drop them (in-use ones stay: docker refuses).
docker images --format '{{.Repository}}:{{.Tag}}' kubedrill/node | grep "^kubedrill/node:$V-" | grep -vx "$TAG" \
  | xargs -r docker rmi >/dev/null 2>&1 || true
log "node image: $TAG ($(docker image inspect -f '{{.Size}}' "$TAG" | awk '{printf "%.0f MB", $1/1e6}'))"
echo "$TAG"
