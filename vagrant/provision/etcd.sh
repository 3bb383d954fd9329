#!/usr/bin/env bash
# node1 only: etcd from Debian (etcd-server), listening on the private network for the agents and on 127.0.0.1 for
# local tools. Plain HTTP on a host-only network: a demo cluster (docs/operations.md covers TLS).
#   etcd.sh NODE_IP
set -euo pipefail
[ $# -eq 1 ] || { echo "usage: $0 NODE_IP" >&2; exit 2; }
ip=$1
export DEBIAN_FRONTEND=noninteractive
say() { printf '[provision:etcd] %s\n' "$*"; }

apt-get install -y -qq --no-install-recommends etcd-server etcd-client >/dev/null
# Flags in a drop-in rather than edits to /etc/default/etcd (a conffile): they win over its variables, and
# rewriting the drop-in is idempotent. Only the client URLs change; the member and its data stay the package's.
install -d -m 0755 /etc/systemd/system/etcd.service.d
cat >/etc/systemd/system/etcd.service.d/trellis-vagrant.conf <<EOF
# written by trellis vagrant/provision/etcd.sh
[Service]
ExecStart=
ExecStart=/usr/bin/etcd \$DAEMON_ARGS --listen-client-urls http://$ip:2379,http://127.0.0.1:2379 --advertise-client-urls http://$ip:2379
EOF
systemctl daemon-reload
systemctl enable etcd.service >/dev/null
systemctl restart etcd.service

for _ in $(seq 1 30); do
  if ETCDCTL_API=3 etcdctl --endpoints "http://$ip:2379" endpoint health >/dev/null 2>&1; then
    say "etcd healthy at http://$ip:2379"
    exit 0
  fi
  sleep 1
done
say "etcd did not become healthy at http://$ip:2379; journalctl -u etcd:"
journalctl -u etcd.service --no-pager -n 30
exit 1
