#!/usr/bin/env bash
# Every VM, first: the Debian packages trellis needs, Node.js 20 (Debian 12 ships 18), then the build of the
# repository synced to /vagrant. Idempotent (`vagrant provision` runs it again).
set -euo pipefail
export DEBIAN_FRONTEND=noninteractive
say() { printf '[provision:common] %s\n' "$*"; }

# Runtime: iproute2; nftables (masquerade; iptables is the agent's fallback); containernetworking-plugins for
# portmap, chained in the conflist (Debian installs it in /usr/lib/cni). Build: build-essential and python3 for the
# native addon node-gyp compiles (syscall-napi). curl, gnupg, ca-certificates: the NodeSource repository.
# iputils-ping and jq: the walkthrough in vagrant/README.md.
packages=(iproute2 nftables iptables containernetworking-plugins ca-certificates curl gnupg build-essential python3
          iputils-ping jq)
say "apt: ${packages[*]}"
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${packages[@]}" >/dev/null

node_major() { node -p 'process.versions.node.split(".")[0]' 2>/dev/null || echo 0; }
if [ "$(node_major)" -lt 20 ]; then
  say "Node.js 20 from NodeSource"
  install -d -m 0755 /etc/apt/keyrings
  curl -fsSL https://deb.nodesource.com/gpgkey/nodesource-repo.gpg.key | gpg --dearmor --yes -o /etc/apt/keyrings/nodesource.gpg
  echo "deb [signed-by=/etc/apt/keyrings/nodesource.gpg] https://deb.nodesource.com/node_20.x nodistro main" \
    >/etc/apt/sources.list.d/nodesource.list
  apt-get update -qq
  apt-get install -y -qq nodejs >/dev/null
fi
say "node $(node --version), npm $(npm --version)"

# As the owner of the synced folder (vagrant), not root: npm >= 7 runs install scripts (node-gyp) as the folder's
# owner, which could not write into a node_modules created by root.
cd /vagrant
owner=$(stat -c %U /vagrant)
say "npm ci && npm run build in /vagrant, as $owner"
sudo -u "$owner" -H npm ci --no-audit --no-fund --loglevel=error
sudo -u "$owner" -H npm run --silent build
