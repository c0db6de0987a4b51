"""One bounded HTTP GET for Milvus's own endpoints (healthz, /metrics, /api/v1 probes).

`source` makes the connection come from that local address: the one a closed firewall gate lets
through (runtime/firewall.py). urllib cannot bind a source address, http.client can.
"""

from __future__ import annotations

import http.client
from urllib.parse import urlsplit


def get(url: str, timeout: float, *, source: str | None = None, limit: int = 32 << 20) -> tuple[int, bytes]:
    """(status, body) of GET `url`; OSError when it cannot be asked or the answer is not HTTP or
    longer than `limit` bytes (then it is not the Milvus endpoint it should be)."""
    parts = urlsplit(url)
    kind = http.client.HTTPSConnection if parts.scheme == "https" else http.client.HTTPConnection
    connection = kind(parts.hostname or "127.0.0.1", parts.port, timeout=timeout,
                      source_address=(source, 0) if source else None)
    try:
        connection.request("GET", (parts.path or "/") + (f"?{parts.query}" if parts.query else ""))
        response = connection.getresponse()
        body = response.read(limit + 1)
    except http.client.HTTPException as error:
        raise OSError(f"not an HTTP answer from {url}: {error}") from None
    finally:
        connection.close()
    if len(body) > limit:
        raise OSError(f"{url} answered more than {limit} bytes")
    return response.status, body
