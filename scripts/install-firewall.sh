#!/usr/bin/env bash
# Install what milvus-migrate's firewall gate uses (docs/decisions/0019): nftables, and iptables as
# the fallback, from Debian, as root. Without them the tool keeps clients away by port isolation
# (three restarts, slower); the tests that need the firewall skip, naming why.
#
# Idempotent and quiet: prints nothing and exits 0 when both are there. When it cannot install, it
# prints one line `SKIP: <reason>` and exits 0.
set -u

skip() { echo "SKIP: $*"; exit 0; }
have() { [ -x /usr/sbin/nft ] && [ -x /usr/sbin/iptables ]; }

have && exit 0
[ "$(id -u)" = 0 ] || skip "the firewall gate needs root (running as $(id -un)); the tool isolates clients by port instead"
command -v apt-get >/dev/null 2>&1 || skip "nft/iptables missing and apt-get is not available (not Debian?)"

log=$(mktemp /tmp/install-firewall.XXXXXX.log)
trap 'rm -f "$log"' EXIT
apt_install() {
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends \
        -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold nftables iptables >>"$log" 2>&1
}
if ! apt_install; then
    DEBIAN_FRONTEND=noninteractive apt-get update -q >>"$log" 2>&1 || skip "apt-get update failed: $(tail -n 1 "$log")"
    apt_install || skip "apt-get install nftables iptables failed: $(tail -n 1 "$log")"
fi
have || skip "installed nftables and iptables but nft or iptables is still missing"
exit 0
