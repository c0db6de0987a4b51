"""The firewall gate: clients cut off from Milvus at once, without a restart (decision 0022).

One rule set, in the network namespace Milvus listens in, REJECTs with a TCP reset every packet
to Milvus's client port and its HTTP (metrics) port, established connections included, unless it
comes from one loopback address of this run's (`exempt`, 127.x.y.z, never 127.0.0.1): the tool's
own connections bind to it, every client's come from elsewhere. gRPC, REST v1 on the client port
and /api/v1 on the metrics port are all cut, which forceDeny is not (docs/milvus.md).

nftables first (`table inet milvus_migrate_<tag>`), iptables/ip6tables where nft is missing (rules
carrying the comment `milvus_migrate_<tag>`). A rule set is recorded in the journal before it is
installed, so resume, rollback and `writes allow` find and remove it; what the journal says is
checked here (`GateRule.checked`) before any of it reaches a command line.
"""

from __future__ import annotations

import ipaddress
import os
import re
import shutil
import subprocess
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from migrator.errors import BadInput, MigrateError

NFT = "nft"
IPTABLES = "iptables"
TOOLS = (NFT, IPTABLES)
NAME_PREFIX = "milvus_migrate_"
_NAME = re.compile(r"^milvus_migrate_[a-z0-9_]{1,40}$")
_NETNS = re.compile(r"^/proc/[0-9]{1,10}/ns/net$")
_TIMEOUT_S = 15.0


class FirewallFailed(MigrateError):
    """A firewall command failed."""


@dataclass(frozen=True)
class GateRule:
    """One run's rule set: where it lives and what it lets through."""

    tool: str  # NFT or IPTABLES
    name: str  # the nft table, or the iptables comment
    ports: tuple[int, ...]  # Milvus's client port and its HTTP/metrics port
    exempt: str  # the loopback address the tool's own connections come from
    netns: str | None = None  # /proc/<pid>/ns/net of Milvus's namespace; None: this tool's own

    def to_dict(self) -> dict[str, Any]:
        return {"tool": self.tool, "name": self.name, "ports": list(self.ports), "exempt": self.exempt,
                "netns": self.netns}

    @classmethod
    def checked(cls, raw: Mapping[str, Any], *, where: str) -> GateRule:
        """A rule read back from the journal: every field checked before it reaches a command."""

        def bad(field: str, why: str) -> BadInput:
            return BadInput(f"{where}: gate.{field} {why}", hint="the journal is data the tool checks; "
                            "restore it from the run's reports or remove the rule by hand (docs/runbook.md)")

        tool, name, ports, exempt, netns = (raw.get(k) for k in ("tool", "name", "ports", "exempt", "netns"))
        if tool not in TOOLS:
            raise bad("tool", f"must be one of {', '.join(TOOLS)}")
        if not isinstance(name, str) or not _NAME.match(name):
            raise bad("name", f"must match {_NAME.pattern}")
        if not isinstance(ports, list) or not ports or len(ports) > 8 or not all(
                isinstance(p, int) and not isinstance(p, bool) and 0 < p < 65536 for p in ports):
            raise bad("ports", "must be a list of 1 to 8 TCP ports")
        if not isinstance(exempt, str) or not is_exempt_address(exempt):
            raise bad("exempt", "must be a loopback IPv4 address other than 127.0.0.1")
        if netns is not None and (not isinstance(netns, str) or not _NETNS.match(netns)):
            raise bad("netns", "must be /proc/<pid>/ns/net")
        return cls(tool, name, tuple(ports), exempt, netns)


def is_exempt_address(text: str) -> bool:
    try:
        address = ipaddress.IPv4Address(text)
    except ValueError:
        return False
    return address.is_loopback and text != "127.0.0.1"


def exempt_address_for(tag: str) -> str:
    """A loopback address of this run's, derived from its tag: 127.<100-199>.<0-255>.<1-254>."""
    import hashlib

    digest = hashlib.sha256(tag.encode()).digest()
    return f"127.{100 + digest[0] % 100}.{digest[1]}.{1 + digest[2] % 254}"


def rule_name(tag: str) -> str:
    """`milvus_migrate_<tag>` with the tag cut to what nft and the journal check accept."""
    cleaned = re.sub(r"[^a-z0-9_]", "_", tag.lower())[:40] or "run"
    return NAME_PREFIX + cleaned


def usable_tool(netns: str | None = None) -> tuple[str | None, str]:
    """(the tool this machine can set the gate with, why) or (None, why not): root, nft or
    iptables on PATH, and a rule set that can really be listed in that namespace."""
    if os.geteuid() != 0:
        return None, "not root: setting a firewall rule needs CAP_NET_ADMIN"
    reasons = []
    for tool, argv in ((NFT, [NFT, "list", "tables"]), (IPTABLES, [IPTABLES, "-w", "-S", "INPUT"])):
        if shutil.which(tool) is None:
            reasons.append(f"{tool} is not installed")
            continue
        result = _run(argv, netns, check=False)
        if result.returncode == 0:
            return tool, f"{tool} answers in Milvus's network namespace"
        reasons.append(f"`{' '.join(argv)}` failed: {_tail(result.stderr)}")
    return None, "; ".join(reasons)


def install(rule: GateRule) -> None:
    """Install the rule set (replacing one of the same name: resume installs it again)."""
    if rule.tool == NFT:
        remove(rule)
        _run([NFT, "-f", "-"], rule.netns, stdin=_nft_ruleset(rule))
        return
    remove(rule)
    ports = ",".join(str(port) for port in rule.ports)
    common = ["-p", "tcp", "-m", "multiport", "--dports", ports, "-m", "comment", "--comment", rule.name,
              "-j", "REJECT", "--reject-with", "tcp-reset"]
    _run([IPTABLES, "-w", "-I", "INPUT", "!", "-s", rule.exempt, *common], rule.netns)
    if shutil.which("ip6tables"):
        _run(["ip6tables", "-w", "-I", "INPUT", *common], rule.netns)


def remove(rule: GateRule) -> bool:
    """Remove the rule set if present; True when something was removed."""
    if rule.tool == NFT:
        if not installed(rule):
            return False
        _run([NFT, "delete", "table", "inet", rule.name], rule.netns)
        return True
    removed = False
    for binary in (IPTABLES, "ip6tables"):
        if shutil.which(binary) is None:
            continue
        for line in _iptables_rules(binary, rule.netns):
            if f"--comment {rule.name}" in line or f'--comment "{rule.name}"' in line:
                _run([binary, "-w", *_delete_spec(line)], rule.netns)
                removed = True
    return removed


def installed(rule: GateRule) -> bool:
    if rule.tool == NFT:
        return rule.name in leftover_tables(rule.netns)
    return any(rule.name in line for line in _iptables_rules(IPTABLES, rule.netns))


def leftover_tables(netns: str | None = None) -> list[str]:
    """The nft tables of this tool in a namespace (a run killed with the gate closed leaves one)."""
    if shutil.which(NFT) is None:
        return []
    result = _run([NFT, "list", "tables"], netns, check=False)
    names = [line.split()[-1] for line in result.stdout.splitlines() if line.startswith("table inet ")]
    return [name for name in names if _NAME.match(name)]


def _nft_ruleset(rule: GateRule) -> str:
    ports = ", ".join(str(port) for port in rule.ports)
    # Priority -200: before any filter chain of the host's own; a reject in any chain is final.
    return (f"table inet {rule.name} {{\n"
            f"  chain input {{\n"
            f"    type filter hook input priority -200; policy accept;\n"
            f"    meta nfproto ipv4 tcp dport {{ {ports} }} ip saddr != {rule.exempt} reject with tcp reset\n"
            f"    meta nfproto ipv6 tcp dport {{ {ports} }} reject with tcp reset\n"
            f"  }}\n"
            f"}}\n")


def _iptables_rules(binary: str, netns: str | None) -> list[str]:
    result = _run([binary, "-w", "-S", "INPUT"], netns, check=False)
    return result.stdout.splitlines() if result.returncode == 0 else []


def _delete_spec(line: str) -> list[str]:
    """`-A INPUT <spec>` as `iptables -S` prints it -> `-D INPUT <spec>`."""
    import shlex

    words = shlex.split(line)
    return ["-D", *words[1:]] if words[:1] == ["-A"] else words


def _run(argv: Sequence[str], netns: str | None, *, stdin: str | None = None,
         check: bool = True) -> subprocess.CompletedProcess[str]:
    if netns is not None and not _same_namespace(netns):
        argv = ["nsenter", f"--net={netns}", *argv]
    try:
        result = subprocess.run(list(argv), input=stdin, capture_output=True, text=True,
                                timeout=_TIMEOUT_S, check=False)
    except (OSError, subprocess.TimeoutExpired) as error:
        raise FirewallFailed(f"`{' '.join(argv)}` could not run: {error}") from None
    if check and result.returncode != 0:
        raise FirewallFailed(f"`{' '.join(argv[:4])} ...` failed: {_tail(result.stderr)}",
                             hint="see docs/runbook.md, \"The firewall gate\"")
    return result


def _same_namespace(netns: str) -> bool:
    try:
        return os.stat(netns).st_ino == os.stat("/proc/self/ns/net").st_ino
    except OSError:
        return False


def _tail(text: str) -> str:
    lines = [line for line in (text or "").strip().splitlines() if line.strip()]
    return lines[-1][:200] if lines else "no error text"
