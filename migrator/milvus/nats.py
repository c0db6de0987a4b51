"""The NATS check: Milvus's embedded nats-server really holds its channels, with the retention asked.

Milvus (natsmq) makes one JetStream stream per physical channel, stream name = subject =
channel name (`by-dev-rootcoord-dml_0` .. `_15`, `by-dev-replicate-msg`), MaxAge =
natsmq.server.retention.maxAge minutes. The server listens on 127.0.0.1 only.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any

from migrator.errors import NotRolledBack
from migrator.findings import Finding

_MAX_AGE_TOLERANCE_S = 0.001  # nats-py turns the server's nanoseconds into float seconds


class NatsUnreachable(NotRolledBack):
    """The embedded NATS server could not be reached or did not answer in time."""


@dataclass(frozen=True)
class StreamSummary:
    name: str
    subjects: list[str]
    messages: int
    bytes: int
    max_age_s: float  # 0 = unlimited


@dataclass
class NatsReport:
    url: str
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


def check_streams(
    address: str,
    expected_max_age_s: float,
    channel_prefix: str = "by-dev",
    *,
    dml_channel_num: int = 16,
    timeout_s: float = 10.0,
) -> NatsReport:
    """Findings: a DML channel `<prefix>-rootcoord-dml_N` (N < rootCoord.dmlChannelNum) without
    its stream, or a stream of ours whose max_age is not retention.maxAge * 60 s."""
    streams = list_streams(address, timeout_s=timeout_s)
    report = NatsReport(url=f"nats://{address}", streams=streams)
    names = {s.name for s in streams}
    for n in range(dml_channel_num):
        channel = f"{channel_prefix}-rootcoord-dml_{n}"
        if channel not in names:
            report.findings.append(Finding("error", "missing-dml-stream", f"no JetStream stream for channel {channel}"))
    for stream in streams:
        if stream.name.startswith(f"{channel_prefix}-") and abs(stream.max_age_s - expected_max_age_s) > _MAX_AGE_TOLERANCE_S:
            report.findings.append(
                Finding(
                    "error",
                    "max-age-mismatch",
                    f"stream {stream.name} keeps messages {stream.max_age_s:g} s, expected {expected_max_age_s:g} s",
                )
            )
    return report
