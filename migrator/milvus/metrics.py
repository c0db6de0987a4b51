"""Milvus's Prometheus metrics (the metrics port's /metrics): the few gauges the migration waits on.

`milvus_datacoord_consume_datanode_tt_lag_ms{channel_name=<vchannel>}` is how far behind "now" the
last time tick is that datacoord received from the datanode for a channel. Those time ticks carry
the datanode's row counts of growing segments: until they arrive after a restart, datacoord
believes a replayed growing segment is empty, and a FlushAll then drops it as "empty sealed
segment" with the rows the datanode is replaying (seen on 2.3.5; docs/milvus.md).
"""

from __future__ import annotations

import re

DATANODE_LAG = "milvus_datacoord_consume_datanode_tt_lag_ms"
_SAMPLE = re.compile(r'^(?P<name>[a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(?P<labels>[^}]*)\})?\s+(?P<value>\S+)')
_LABEL = re.compile(r'(?P<key>[a-zA-Z_][a-zA-Z0-9_]*)="(?P<value>(?:[^"\\]|\\.)*)"')
MAX_BYTES = 32 << 20  # a metrics page is a few hundred KB; a bigger answer is not Milvus's


class MetricsUnavailable(Exception):
    """The metrics page could not be read; `reason` says why. Callers translate it."""

    def __init__(self, url: str, reason: str) -> None:
        super().__init__(f"{url}: {reason}")
        self.url, self.reason = url, reason


def read_metrics(metrics_url: str, timeout: float = 5.0, *, source: str | None = None) -> str:
    """The metrics page; `source`: the local address to ask from (behind a closed firewall gate)."""
    from migrator.util.http import get

    url = metrics_url.rstrip("/") + "/metrics"
    try:
        status, data = get(url, timeout, source=source, limit=MAX_BYTES)
    except OSError as error:
        raise MetricsUnavailable(url, str(error)) from None
    if status != 200:
        raise MetricsUnavailable(url, f"HTTP {status}")
    return data.decode("utf-8", "replace")


def samples(text: str, name: str) -> list[tuple[dict[str, str], float]]:
    """(labels, value) of every sample of metric `name` in a Prometheus text page."""
    found = []
    for line in text.splitlines():
        if not line.startswith(name):
            continue
        match = _SAMPLE.match(line)
        if match is None or match["name"] != name:
            continue
        try:
            value = float(match["value"])
        except ValueError:
            continue
        labels = {m["key"]: m["value"] for m in _LABEL.finditer(match["labels"] or "")}
        found.append((labels, value))
    return found


def datanode_lag_ms(text: str) -> dict[str, float]:
    """vchannel -> how far behind now datacoord's last datanode time tick for it is (ms)."""
    return {labels["channel_name"]: value for labels, value in samples(text, DATANODE_LAG) if "channel_name" in labels}
