#!/usr/bin/env bash
# The kind base image, offline: kind's own node files (from the kind Go module) laid over a
# debootstrap'd Debian rootfs with Debian's containerd/runc/CNI plugins, plus crictl.
# Differences from upstream kind, each needed on hosts like ours:
#   - containerd: restrict_oom_score_adj = true (the host cannot lower oom_score_adj; runc would fail);
#   - Debian's containerd 1.6 and runc instead of kind's own builds (no GitHub here).
# Usage: build-base-image.sh   -> prints the image tag kubedrill/kind-base:<hash>
. "$(dirname "$0")/lib.sh"
ROOTFS_TAR=$(bash "$(dirname "$0")/build-rootfs.sh" node | tail -1)
bash "$(dirname "$0")/build-go-tools.sh" crictl >&2
KIND_DIR=$(go mod download -json "sigs.k8s.io/kind@$KIND_VERSION" | python3 -c 'import json,sys;print(json.load(sys.stdin)["Dir"])')
FILES="$KIND_DIR/images/base/files"
[ -d "$FILES" ] || die "kind module has no images/base/files at $KIND_DIR"
SELF_SUM=$(cat "$0" "$(dirname "$0")/iptables-wrapper" | sha256sum | cut -c1-8)
HASH=$(echo "$(basename "$ROOTFS_TAR") $KIND_VERSION $CRICTL_VERSION $SELF_SUM" | sha256sum | cut -c1-12)
TAG="kubedrill/kind-base:$HASH"
if docker image inspect "$TAG" >/dev/null 2>&1; then log "base image cached: $TAG"; echo "$TAG"; exit 0; fi
need_free_gb 3
WORK=$(mktemp -d "$KD_CACHE/base-build.XXXXXX"); trap 'rm -rf "$WORK"' EXIT
R="$WORK/rootfs"; mkdir -p "$R"
run_step "unpack node rootfs" tar -C "$R" --numeric-owner -xf "$ROOTFS_TAR"
# kind's files, with the modes its Dockerfile gives them.
install -m 0755 "$FILES"/usr/local/bin/* "$R/usr/local/bin/"
mkdir -p "$R/kind/bin" "$R/LICENSES" "$R/etc/containerd" "$R/etc/default" "$R/etc/sysctl.d" "$R/etc/systemd/system/kubelet.service.d"
cp -r "$FILES"/kind/. "$R/kind/"; chmod 0755 "$R/kind/bin" "$R"/kind/bin/*
install -m 0644 "$FILES"/etc/crictl.yaml "$R/etc/"
install -m 0644 "$FILES"/etc/containerd/* "$R/etc/containerd/"
install -m 0644 "$FILES"/etc/default/* "$R/etc/default/"
install -m 0644 "$FILES"/etc/sysctl.d/* "$R/etc/sysctl.d/"
install -m 0644 "$FILES"/etc/systemd/system/*.service "$FILES"/etc/systemd/system/*.slice "$R/etc/systemd/system/"
install -m 0644 "$FILES"/etc/systemd/system/kubelet.service.d/* "$R/etc/systemd/system/kubelet.service.d/"
sed -i 's/restrict_oom_score_adj = false/restrict_oom_score_adj = true/' "$R/etc/containerd/config.toml"
grep -q 'restrict_oom_score_adj = true' "$R/etc/containerd/config.toml" || die "could not set restrict_oom_score_adj in containerd config"
# kind's units expect its own builds here; Debian's binaries stand in.
ln -sf /usr/bin/containerd "$R/usr/local/bin/containerd"
ln -sf /usr/bin/containerd-shim-runc-v2 "$R/usr/local/bin/containerd-shim-runc-v2"
ln -sf /usr/bin/ctr "$R/usr/local/bin/ctr"
ln -sf /usr/sbin/runc "$R/usr/local/sbin/runc"
install -m 0755 "$KD_CACHE/tools/crictl-$CRICTL_VERSION/crictl" "$R/usr/local/bin/crictl"
mkdir -p "$R/opt/cni/bin"
for p in "$R"/usr/lib/cni/*; do ln -sf "/usr/lib/cni/$(basename "$p")" "$R/opt/cni/bin/$(basename "$p")"; done
install -m 0755 "$(dirname "$0")/iptables-wrapper" "$R/usr/sbin/iptables-wrapper"
# The RUN steps of kind's base Dockerfile.
find "$R/lib/systemd/system/sysinit.target.wants/" -name "systemd-tmpfiles-setup.service" -delete || true
rm -f "$R"/lib/systemd/system/multi-user.target.wants/* "$R"/etc/systemd/system/*.wants/* \
      "$R"/lib/systemd/system/local-fs.target.wants/* "$R"/lib/systemd/system/sockets.target.wants/*udev* \
      "$R"/lib/systemd/system/sockets.target.wants/*initctl* "$R"/lib/systemd/system/basic.target.wants/*
echo "ReadKMsg=no" >> "$R/etc/systemd/journald.conf"
ln -sf /lib/systemd/systemd "$R/sbin/init"
chroot "$R" systemctl enable kubelet.service containerd.service undo-mount-hacks.service >/dev/null 2>&1 \
  || die "systemctl enable failed inside the rootfs"
chroot "$R" systemctl mask systemd-binfmt.service >/dev/null 2>&1 || true
mkdir -p "$R/etc/kubernetes/manifests"
# cri-base.json: containerd's default OCI spec + kind's createContainer hook, minus rlimits.
ctr oci spec | python3 -c '
import json, sys
spec = json.load(sys.stdin)
spec.setdefault("hooks", {}).setdefault("createContainer", []).append({"path": "/kind/bin/mount-product-files.sh"})
spec["process"].pop("rlimits", None)
json.dump(spec, sys.stdout, indent=2)' > "$R/etc/containerd/cri-base.json"
echo "kubedrill offline kind base ($KIND_VERSION files, Debian bookworm userland)" > "$R/kind/kubedrill-base"
run_step "docker import $TAG" sh -c "tar -C '$R' --numeric-owner -c . | docker import - '$TAG-rootfs' >/dev/null"
# docker import cannot set STOPSIGNAL; a one-line build on the local image can (nothing is pulled).
mkdir -p "$WORK/ctx"
printf 'FROM %s\nENV container=docker\nSTOPSIGNAL SIGRTMIN+3\nENTRYPOINT ["/usr/local/bin/entrypoint", "/sbin/init"]\n' "$TAG-rootfs" > "$WORK/ctx/Dockerfile"
run_step "finish $TAG" docker build -q -t "$TAG" "$WORK/ctx"
docker rmi "$TAG-rootfs" >/dev/null 2>&1 || true
log "base image: $TAG"
echo "$TAG"
