#!/usr/bin/env bash
# Debian bookworm root filesystems made with debootstrap from the host's Debian mirror.
# Usage: build-rootfs.sh node|net  -> $KD_CACHE/rootfs/<flavour>-<hash>.tar
#   node: what kind's base image installs (systemd, containerd, runc, CNI plugins, iptables ...)
#   net:  a small userland for kube-proxy, kindnetd and haproxy images (iptables, nftables, conntrack)
. "$(dirname "$0")/lib.sh"
FLAVOUR="${1:?usage: build-rootfs.sh node|net}"
case "$FLAVOUR" in
  node) PKGS="systemd,systemd-sysv,dbus,containerd,runc,containernetworking-plugins,conntrack,iptables,nftables,iproute2,ethtool,util-linux,mount,kmod,libseccomp2,pigz,fuse-overlayfs,bash,ca-certificates,curl,jq,procps,socat,ebtables,iputils-ping,dnsutils,rsync" ;;
  net)  PKGS="iptables,nftables,conntrack,iproute2,haproxy,ca-certificates,procps,netbase" ;;
  *) die "unknown rootfs flavour '$FLAVOUR' (node|net)" ;;
esac
HASH=$(echo "$FLAVOUR $PKGS bookworm v1" | sha256sum | cut -c1-12)
TAR="$KD_CACHE/rootfs/$FLAVOUR-$HASH.tar"
if [ -f "$TAR" ]; then log "rootfs $FLAVOUR cached: $TAR"; echo "$TAR"; exit 0; fi
command -v debootstrap >/dev/null || { log "installing debootstrap"; DEBIAN_FRONTEND=noninteractive apt-get install -y -qq debootstrap >/dev/null; }
need_free_gb 3
MIRROR=$(grep -rhoE 'https?://[^ ]*debian/?$|https?://deb\.debian\.org/debian' /etc/apt/sources.list /etc/apt/sources.list.d/ 2>/dev/null | grep -v security | head -1 || true)
MIRROR="${KUBEDRILL_DEBIAN_MIRROR:-${MIRROR:-http://deb.debian.org/debian}}"
DIR="$KD_CACHE/rootfs/$FLAVOUR-$HASH.d"
rm -rf "$DIR"; mkdir -p "$DIR"
run_step "debootstrap $FLAVOUR rootfs from $MIRROR" debootstrap --variant=minbase --include="$PKGS" bookworm "$DIR" "$MIRROR" > "$KD_CACHE/rootfs/$FLAVOUR-$HASH.log" 2>&1
rm -rf "$DIR"/var/cache/apt/archives/*.deb "$DIR"/var/lib/apt/lists/*
tar -C "$DIR" --numeric-owner -cf "$TAR.tmp" . && mv "$TAR.tmp" "$TAR"
rm -rf "$DIR"
log "rootfs $FLAVOUR: $TAR ($(du -h "$TAR" | cut -f1))"
echo "$TAR"
