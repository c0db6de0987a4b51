"""The NATS check: Milvus's embedded nats-server really holds its channels, with the retention asked.

Milvus (natsmq) makes one JetStream stream per physical channel, stream name = subject =
channel name (`by-dev-rootcoord-dml_0` .. `_15`, `by-dev-replicate-msg`), MaxAge =
natsmq.server.retention.maxAge minutes. The server listens on 127.0.0.1 only, so the streams are
read over the network where the tool reaches that loopback (`list_streams`), or from the store on
disk (`read_store`): `<storeDir>/jetstream/<account>/streams/<name>/meta.inf` is the stream's
config as JSON (seen on 2.3.5's nats-server 2.9: name, subjects, max_age in ns, Created).
"""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from migrator.errors import NotRolledBack
from migrator.findings import Finding

_MAX_AGE_TOLERANCE_S = 0.001  # nats-py turns the server's nanoseconds into float seconds


class NatsUnreachable(NotRolledBack):
    """The embedded NATS server could not be reached or did not answer in time."""


class NatsStoreUnreadable(NotRolledBack):
    """The JetStream store on disk is missing or not what nats-server writes."""


@dataclass(frozen=True)
class StreamSummary:
    name: str
    subjects: list[str]
    messages: int | None  # None: read from disk, where only the config is plain
    bytes: int
    max_age_s: float  # 0 = unlimited
    created: datetime | None = None


@dataclass
class NatsReport:
    url: str  # nats://host:port, or the store directory read
    streams: list[StreamSummary]
    findings: list[Finding] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.findings


def list_streams(address: str, *, timeout_s: float = 10.0) -> list[StreamSummary]:
    """Every JetStream stream of the NATS server at nats://ADDRESS (host:port)."""
    url = f"nats://{address}"
    try:
        return asyncio.run(asyncio.wait_for(_list_streams(url, timeout_s), timeout_s))
    except (asyncio.TimeoutError, TimeoutError) as exc:
        raise NatsUnreachable(f"NATS at {url} did not answer within {timeout_s:g} s") from exc
    except NatsUnreachable:
        raise
    except Exception as exc:  # nats-py raises its own tree plus OSError subclasses
        raise NatsUnreachable(f"cannot list JetStream streams at {url}: {exc.__class__.__name__}: {exc}") from exc


async def _list_streams(url: str, timeout_s: float) -> list[StreamSummary]:
    import nats  # heavy: only when a NATS check runs

    seen: list[Exception] = []

    async def remember(exc: Exception) -> None:
        """nats-py prints connection errors by default; keep the last one for our message."""
        seen.append(exc)

    try:
        # max_reconnect_attempts=0 would mean "retry forever" in nats-py's server selection.
        nc = await nats.connect(
            url,
            connect_timeout=timeout_s,
            allow_reconnect=False,
            max_reconnect_attempts=1,
            reconnect_time_wait=0.1,
            error_cb=remember,
        )
    except Exception as exc:
        cause = seen[-1] if seen else exc
        raise NatsUnreachable(f"cannot connect to NATS at {url}: {cause.__class__.__name__}: {cause}") from exc
    try:
        jsm = nc.jsm(timeout=timeout_s)
        streams: list[Any] = []
        while page := await jsm.streams_info(offset=len(streams)):  # the server pages by 256
            streams.extend(page)
        return [_summary(info) for info in streams]
    finally:
        await nc.close()


def _summary(info: Any) -> StreamSummary:
    config, state = info.config, info.state
    return StreamSummary(
        name=config.name,
        subjects=list(config.subjects or []),
        messages=int(state.messages or 0),
        bytes=int(state.bytes or 0),
        max_age_s=float(config.max_age or 0),
    )


def read_store(store_dir: Path) -> list[StreamSummary]:
    """Every stream of the JetStream store under `store_dir` (natsmq.server.storeDir, as this host
    sees it), from each stream's meta.inf; `bytes` is the size of its message blocks."""
    root = Path(store_dir) / "jetstream"
    metas = sorted(root.glob("*/streams/*/meta.inf"))
    if not metas:
        raise NatsStoreUnreadable(f"no JetStream stream under {root}"
                                  + ("" if root.is_dir() else " (no such directory)"))
    streams = []
    for meta in metas:
        try:
            config = json.loads(meta.read_bytes())
            name, max_age_ns = str(config["name"]), int(config.get("max_age") or 0)
        except (OSError, ValueError, LookupError, TypeError) as error:
            raise NatsStoreUnreadable(f"{meta}: not a JetStream stream config ({error})") from None
        blocks = sum(block.stat().st_size for block in (meta.parent / "msgs").glob("*.blk"))
        streams.append(StreamSummary(name=name, subjects=list(config.get("subjects") or []), messages=None,
                                     bytes=blocks, max_age_s=max_age_ns / 1e9, created=_created(config.get("Created"))))
    return streams


_FRACTION = re.compile(r"(\.\d{6})\d+")


def _created(text: Any) -> datetime | None:
    """nats-server's RFC 3339 time with nanoseconds (`2026-11-30T05:10:21.123456789Z`)."""
    if not isinstance(text, str):
        return None
    try:
        return datetime.fromisoformat(_FRACTION.sub(r"\1", text).replace("Z", "+00:00"))
    except ValueError:
        return None


def stream_findings(
    streams: Iterable[StreamSummary],
    expected_max_age_s: float,
    channel_prefix: str = "by-dev",
    *,
    dml_channel_num: int = 16,
    created_after: datetime | None = None,
) -> list[Finding]:
    """A DML channel `<prefix>-rootcoord-dml_N` (N < rootCoord.dmlChannelNum) without its stream, a
    stream of ours whose max_age is not retention.maxAge * 60 s, and (from a store on disk, which
    outlives the server) a stream created before `created_after`, the start it should prove."""
    streams = list(streams)
    findings = []
    names = {s.name for s in streams}
    for n in range(dml_channel_num):
        channel = f"{channel_prefix}-rootcoord-dml_{n}"
        if channel not in names:
            findings.append(Finding("error", "missing-dml-stream", f"no JetStream stream for channel {channel}"))
    for stream in streams:
        if not stream.name.startswith(f"{channel_prefix}-"):
            continue
        if abs(stream.max_age_s - expected_max_age_s) > _MAX_AGE_TOLERANCE_S:
            findings.append(Finding(
                "error", "max-age-mismatch",
                f"stream {stream.name} keeps messages {stream.max_age_s:g} s, expected {expected_max_age_s:g} s"))
        if created_after is not None and (stream.created is None or stream.created < created_after):
            findings.append(Finding(
                "error", "stream-before-start",
                f"stream {stream.name} was created "
                f"{stream.created.isoformat() if stream.created else 'at no known time'}, "
                f"before this start ({created_after.isoformat()}): the store on disk is not this server's"))
    return findings


def check_streams(
    address: str,
    expected_max_age_s: float,
    channel_prefix: str = "by-dev",
    *,
    dml_channel_num: int = 16,
    timeout_s: float = 10.0,
) -> NatsReport:
    """The streams of the server at nats://ADDRESS and their findings (`stream_findings`)."""
    streams = list_streams(address, timeout_s=timeout_s)
    return NatsReport(url=f"nats://{address}", streams=streams,
                      findings=stream_findings(streams, expected_max_age_s, channel_prefix,
                                               dml_channel_num=dml_channel_num))


def check_store(
    store_dir: Path,
    expected_max_age_s: float,
    channel_prefix: str = "by-dev",
    *,
    dml_channel_num: int = 16,
    created_after: datetime | None = None,
) -> NatsReport:
    """The streams of the store on disk and their findings (`stream_findings`)."""
    streams = read_store(store_dir)
    return NatsReport(url=str(store_dir), streams=streams,
                      findings=stream_findings(streams, expected_max_age_s, channel_prefix,
                                               dml_channel_num=dml_channel_num, created_after=created_after))
