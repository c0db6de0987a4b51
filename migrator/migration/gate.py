"""The client gate: how a run keeps clients away from Milvus while its MQ changes (decision 0022).

Two kinds:
- `firewall`: a rule in the network namespace Milvus listens in rejects every client connection at
  once, without a restart, established ones included (runtime/firewall.py). The tool's own
  connections come from the rule's exempt address: pymilvus through a relay bound to it, HTTP
  (healthz, metrics) directly. One restart, source to target, and no reload in the window.
- `isolation`: every restart the tool makes moves the client port to a private one and switches
  the HTTP API off (decision 0008); three restarts. Kept where no firewall can be set: not root, no
  nft or iptables, or Milvus in a container, whose network namespace is made anew at each start
  (a rule in the old one does not cover the new one before it listens).

The plan records which gate the run uses and why; the report and `status` say it too.
"""

from __future__ import annotations

import contextlib
import os
import socket
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from migrator.migration.plan import GateFact
from migrator.runtime import firewall
from migrator.runtime.firewall import GateRule
from migrator.runtime.netns import SharedRelays
from migrator.util.strenum import StrEnum

HOST_NETWORK_KINDS = ("process", "systemd", "command")


class GateKind(StrEnum):
    FIREWALL = "firewall"
    ISOLATION = "isolation"


@dataclass(frozen=True)
class GateChoice:
    kind: GateKind
    tool: str | None  # nft or iptables for the firewall
    why: str

    def to_dict(self) -> GateFact:
        return GateFact(kind=str(self.kind), tool=self.tool, why=self.why)

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any] | None) -> GateChoice:
        """A plan's gate; a plan made before gates existed isolates."""
        if not raw:
            return cls(GateKind.ISOLATION, None, "the plan names no gate")
        tool = raw.get("tool")
        return cls(GateKind(str(raw.get("kind", GateKind.ISOLATION))), tool if tool in firewall.TOOLS else None,
                   str(raw.get("why", "")))


def choose(setting: str, runtime_kind: str, uri: str) -> GateChoice:
    """The gate a run on this machine uses, and why: the playbook's `migration.gate` (auto,
    firewall, isolation), the deployment shape, and what this machine can do."""
    if setting == "isolation":
        return GateChoice(GateKind.ISOLATION, None, "the playbook asks for port isolation (migration.gate)")
    why_not = _firewall_impossible(runtime_kind, uri)
    tool = None
    if why_not is None:
        tool, why = firewall.usable_tool()
        why_not = None if tool else why
    if why_not is None:
        return GateChoice(GateKind.FIREWALL, tool, f"{tool} in Milvus's network namespace (this host's)")
    return GateChoice(GateKind.ISOLATION, None, f"port isolation, no firewall: {why_not}")


def _firewall_impossible(runtime_kind: str, uri: str) -> str | None:
    if runtime_kind not in HOST_NETWORK_KINDS:
        return (f"a {runtime_kind} container gets a new network namespace at every start, so a rule set before "
                "the restart does not hold the new one")
    host = client_address(uri)[0]
    if ":" in host:
        return f"the client address {host} is IPv6; the rule's exempt address is IPv4 loopback"
    return None


def client_address(uri: str) -> tuple[str, int]:
    """Milvus's client host and port, from the playbook's uri (userinfo cut at its last `@`)."""
    rest = uri.split("://", 1)[-1]
    parts = urlsplit("http://" + rest.rsplit("@", 1)[-1])
    return parts.hostname or "127.0.0.1", parts.port or 19530


def metrics_port(metrics_url: str) -> int:
    return urlsplit(metrics_url).port or 9091


def rule_for(run_id: str, choice: GateChoice, uri: str, metrics_url: str) -> GateRule:
    """The rule set of one run: Milvus's client and HTTP ports, an exempt address of its own."""
    assert choice.tool is not None, "a firewall gate names its tool"
    ports = tuple(sorted({client_address(uri)[1], metrics_port(metrics_url)}))
    return GateRule(choice.tool, firewall.rule_name(run_id), ports, firewall.exempt_address_for(run_id))


_RELAYS = SharedRelays()


@contextlib.contextmanager
def reach(rule: GateRule, uri: str) -> Iterator[str]:
    """`host:port` from which the tool's pymilvus reaches Milvus through the closed gate: a relay
    whose connections come from the rule's exempt address."""
    host, port = client_address(uri)
    with _RELAYS.reach(os.getpid(), port, what="Milvus behind the gate", source=rule.exempt, host=host) as address:
        yield address


def open_to_clients(uri: str, metrics_url: str) -> list[str]:
    """The gated ports that a client (a connection from no exempt address) can still open; empty
    when the gate holds. A reset or a refusal means it holds."""
    host, port = client_address(uri)
    metrics = urlsplit(metrics_url)
    targets = [(host, port), (metrics.hostname or host, metrics_port(metrics_url))]
    open_ports = []
    for target in targets:
        try:
            socket.create_connection(target, timeout=2.0).close()
        except OSError:
            continue
        open_ports.append(f"{target[0]}:{target[1]}")
    return open_ports
