#!/usr/bin/env bash
# Every VM, last: installs trellis from /vagrant (scripts/install) and starts trellis-agent.service; on the etcd
# node it first writes the network config, once.
#   trellis.sh NODE_IP ETCD_ENDPOINTS POD_NETWORK write-network-config|no-network-config
set -euo pipefail
[ $# -eq 4 ] || { echo "usage: $0 NODE_IP ETCD_ENDPOINTS POD_NETWORK write-network-config|no-network-config" >&2; exit 2; }
node_ip=$1 etcd=$2 network=$3 network_config=$4
say() { printf '[provision:trellis] %s\n' "$*"; }
cd /vagrant

# The Vagrant NAT trap (flannel #1192): eth0 is the provider's NAT interface, 10.0.2.15 on EVERY VM, and it holds
# the default route. An agent left to choose takes the default route's interface, so every node would announce
# 10.0.2.15 as its public IP and no VXLAN packet would reach another node. eth1 is the private network
# (192.168.56.0/24): the agent must be told to use it.
iface=eth1
if ! ip -4 -o addr show dev "$iface" 2>/dev/null | grep -qF " $node_ip/"; then
  say "$iface does not carry $node_ip; the box names its interfaces differently:"
  ip -4 -o addr show
  exit 1
fi

if [ "$network_config" = write-network-config ]; then
  # Only when there is none (exit 5): a second provisioning run leaves the cluster's config alone.
  status=0
  agent/bin/agent network show --etcd-endpoints "$etcd" >/dev/null 2>&1 || status=$?
  case "$status" in
    0) say "network config already in etcd: kept" ;;
    5) agent/bin/agent network set --network "$network" --etcd-endpoints "$etcd" >/dev/null
       say "network config written: $network" ;;
    *) say "trellis-agent network show failed with exit code $status"; exit 1 ;;
  esac
fi

# scripts/install renders the node's agent.env, conflist and unit with deploy/render-node-config — the renderer the
# netns lab uses — and installs them with the launchers. An existing /etc/trellis/agent.env is kept.
scripts/install --etcd-endpoints "$etcd" --iface "$iface" --public-ip "$node_ip"
systemctl enable trellis-agent.service >/dev/null
# restart, not start: a second provisioning run (`vagrant provision`) runs the new build.
systemctl restart trellis-agent.service

# The agent writes the subnet file once its lease and datapath are in place.
for _ in $(seq 1 60); do
  if [ -s /run/flannel/subnet.env ]; then
    say "trellis-agent ready: $(grep FLANNEL_SUBNET /run/flannel/subnet.env)"
    # The CLI does not read the service's agent.env: etcd and the interface are given here (and in the README).
    trellis-agent status --etcd-endpoints "$etcd" --iface "$iface"
    exit 0
  fi
  sleep 1
done
say "trellis-agent not ready after 60 s; journalctl -u trellis-agent:"
journalctl -u trellis-agent.service --no-pager -n 40
exit 1
