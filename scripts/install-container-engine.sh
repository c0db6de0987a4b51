#!/usr/bin/env bash
# Install the container engine that milvus-migrate's container tests use (Debian 12, as root):
#   podman + runc          Debian's; crun refuses this machine's hybrid cgroups
#   netavark + aardvark-dns  compose services reach each other by name (`etcd:2379`);
#                            Debian's CNI setup has no dnsname plugin
#   iptables               netavark sets up NAT and `-p` with it; with --no-install-recommends
#                            nothing else pulls it in ("netavark: No such file or directory")
#   podman-compose 1.6.0   from PyPI, in its own venv, linked as /usr/local/bin/podman-compose.
#                            Debian's 1.0.3 prints its own chatter on stdout (breaks `ps -q`),
#                            lacks `logs --no-log-prefix`/`--no-color`; see tests/containers/README.md
#   etcd-server, etcd-client etcd 3.4.23 (v3 API): the etcd image of the compose shape
#   busybox-static          a shell and coreutils inside the images built here
#   tini                    the Milvus image's ENTRYPOINT, as in the official image
# Podman itself is configured by tests/containers/containers.conf through CONTAINERS_CONF
# (runtime, cgroup manager, ulimits, network backend): nothing under /etc is edited.
#
# Idempotent and quiet: prints nothing and exits 0 when everything is there (it runs at every
# `make test`, and then costs a few `test -x`). When it cannot install, it prints one line
# `SKIP: <reason>` and exits 0, so the test setup skips with that reason.
set -u

PODMAN_COMPOSE_VERSION=1.6.0
PODMAN_COMPOSE_VENV=/opt/milvus-migrate/podman-compose-$PODMAN_COMPOSE_VERSION
PODMAN_COMPOSE_LINK=/usr/local/bin/podman-compose
APT_PACKAGES=(podman runc netavark aardvark-dns iptables etcd-server etcd-client busybox-static tini util-linux python3-venv)

skip() { echo "SKIP: $*"; exit 0; }

# The tests run podman as root (rootful: bind mounts owned by root, nsenter into a
# container's network namespace); rootless podman is not set up here.
[ "$(id -u)" = 0 ] || skip "container tests need root (running as $(id -un))"

have_apt_tools() {
    local tool
    for tool in /usr/bin/podman /usr/bin/runc /usr/bin/etcd /usr/bin/etcdctl /bin/busybox /usr/bin/tini-static /usr/bin/nsenter \
                /usr/lib/podman/netavark /usr/lib/podman/aardvark-dns /usr/sbin/iptables; do
        [ -x "$tool" ] || return 1
    done
}
have_compose() {
    [ -f "$PODMAN_COMPOSE_VENV/.installed" ] && [ "$(readlink "$PODMAN_COMPOSE_LINK" 2>/dev/null)" = "$PODMAN_COMPOSE_VENV/bin/podman-compose" ]
}

have_apt_tools && have_compose && exit 0

log=$(mktemp /tmp/install-container-engine.XXXXXX.log)
trap 'rm -f "$log"' EXIT

if ! have_apt_tools; then
    command -v apt-get >/dev/null 2>&1 || skip "podman/runc/etcd missing and apt-get is not available (not Debian?)"
    apt_install() {
        DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends \
            -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold \
            "${APT_PACKAGES[@]}" >>"$log" 2>&1
    }
    if ! apt_install; then
        # Package lists missing or stale on a fresh machine: update once, then try again.
        DEBIAN_FRONTEND=noninteractive apt-get update -q >>"$log" 2>&1 \
            || skip "apt-get update failed: $(tail -n 1 "$log")"
        apt_install || skip "apt-get install ${APT_PACKAGES[*]} failed: $(tail -n 1 "$log")"
    fi
    # Debian's etcd-server starts no daemon without systemd; if an init did start one, it would
    # hold 2379/2380 on the host: stop it, the tests run their own etcd in a container.
    if command -v systemctl >/dev/null 2>&1 && systemctl is-active --quiet etcd 2>/dev/null; then
        systemctl disable --now etcd >>"$log" 2>&1 || true
    fi
    have_apt_tools || skip "installed ${APT_PACKAGES[*]} but a tool is still missing"
fi

if ! have_compose; then
    python3 -m venv "$PODMAN_COMPOSE_VENV" >>"$log" 2>&1 \
        || skip "python3 -m venv $PODMAN_COMPOSE_VENV failed: $(tail -n 1 "$log")"
    "$PODMAN_COMPOSE_VENV/bin/python" -m pip install -q --disable-pip-version-check \
        "podman-compose==$PODMAN_COMPOSE_VERSION" >>"$log" 2>&1 \
        || skip "pip install podman-compose==$PODMAN_COMPOSE_VERSION failed: $(grep -v '^WARNING' "$log" | tail -n 1)"
    # Ahead of Debian's /usr/bin/podman-compose (1.0.3) on PATH, if that is installed too.
    ln -sfn "$PODMAN_COMPOSE_VENV/bin/podman-compose" "$PODMAN_COMPOSE_LINK"
    touch "$PODMAN_COMPOSE_VENV/.installed"
fi
exit 0
