#!/bin/bash
# kubedrill-kindnet: the part of kindnetd kubedrill needs, for clusters built offline where the
# kindnetd module cannot be fetched. Every few seconds, for this node:
#   - write the CNI config (ptp + host-local on this node's podCIDR + portmap) once the podCIDR is known;
#   - route every other node's podCIDR via that node's InternalIP (all kind nodes share one L2 network);
#   - masquerade pod traffic that leaves the pod network.
# Pods on different nodes therefore reach each other directly, as with kindnetd.
set -u
: "${NODE_NAME:?NODE_NAME must be set from the downward API}"
: "${POD_SUBNET:=10.244.0.0/16}"
SA=/var/run/secrets/kubernetes.io/serviceaccount
SERVER="https://${CONTROL_PLANE_ENDPOINT:-${KUBERNETES_SERVICE_HOST}:${KUBERNETES_SERVICE_PORT}}"
CNI_CONF=/etc/cni/net.d/10-kindnet.conflist
kctl() { kubectl --server="$SERVER" --token="$(cat $SA/token)" --certificate-authority=$SA/ca.crt --request-timeout=5s "$@"; }
ensure_masq() {
  iptables -t nat -N KUBEDRILL-MASQ 2>/dev/null || true
  iptables -t nat -C POSTROUTING -s "$POD_SUBNET" -j KUBEDRILL-MASQ 2>/dev/null \
    || iptables -t nat -A POSTROUTING -s "$POD_SUBNET" -j KUBEDRILL-MASQ
  iptables -t nat -C KUBEDRILL-MASQ -d "$POD_SUBNET" -j RETURN 2>/dev/null \
    || iptables -t nat -A KUBEDRILL-MASQ -d "$POD_SUBNET" -j RETURN
  iptables -t nat -C KUBEDRILL-MASQ -j MASQUERADE 2>/dev/null \
    || iptables -t nat -A KUBEDRILL-MASQ -j MASQUERADE
}
echo "kubedrill-kindnet on $NODE_NAME: pod subnet $POD_SUBNET, API $SERVER"
while true; do
  ensure_masq
  if lines=$(kctl get nodes -o jsonpath='{range .items[*]}{.metadata.name} {.spec.podCIDR} {.status.addresses[?(@.type=="InternalIP")].address}{"\n"}{end}'); then
    while read -r name cidr ip; do
      [ -n "$name" ] && [ -n "$cidr" ] && [ -n "$ip" ] || continue
      if [ "$name" = "$NODE_NAME" ]; then
        want=$(printf '{"cniVersion":"0.3.1","name":"kindnet","plugins":[{"type":"ptp","ipMasq":false,"ipam":{"type":"host-local","dataDir":"/run/cni-ipam-state","routes":[{"dst":"0.0.0.0/0"}],"ranges":[[{"subnet":"%s"}]]},"mtu":1500},{"type":"portmap","capabilities":{"portMappings":true}}]}' "$cidr")
        if [ "$(cat "$CNI_CONF" 2>/dev/null)" != "$want" ]; then
          echo "$want" > "$CNI_CONF.tmp" && mv "$CNI_CONF.tmp" "$CNI_CONF" && echo "wrote $CNI_CONF for $cidr"
        fi
      else
        cur=$(ip route show "$cidr" 2>/dev/null)
        case "$cur" in *"via $ip "*) ;; *) ip route replace "$cidr" via "$ip" && echo "route $cidr via $ip ($name)";; esac
      fi
    done <<< "$lines"
  else
    echo "listing nodes failed; retrying"
  fi
  sleep 5
done
