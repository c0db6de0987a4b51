"""The one interface every deployment shape implements (process, systemd, compose, docker, ...)."""

from __future__ import annotations

from typing import Any, Protocol

from migrator.logs import Follower
from migrator.runtime.process import StopResult


class Runtime(Protocol):
    kind: str

    def running(self) -> bool:
        """Is Milvus (the process, unit or container) alive right now?"""

    def stop(self, deadline_s: float) -> StopResult:
        """Stop, escalating after the deadline; return once Milvus is proven gone."""

    def start(self) -> None:
        """Start Milvus; returns once it is launched (health is waited for separately)."""

    def wait_healthy(self, deadline_s: float) -> float:
        """Block until healthz says OK; fail fast when Milvus exits. Returns the seconds waited."""

    def environment(self) -> dict[str, str]:
        """The environment variables the Milvus process sees (they beat config files)."""

    def log_mark(self) -> dict[str, Any]:
        """A JSON-able position in Milvus's log: lines after it are written after this call."""

    def log_follower(self, mark: dict[str, Any]) -> Follower:
        """Follow Milvus's log from a mark taken before a restart."""
