"""etcd's v3 JSON gateway over plain HTTP (urllib): the few calls the tool needs, no client library.

Keys and values travel base64-encoded; a prefix is read as the range [prefix, prefix+1).
"""

from __future__ import annotations

import base64
import json
import urllib.error
import urllib.request


class EtcdUnreachable(Exception):
    """The gateway did not answer, or not with JSON; `reason` says how. Callers translate it."""

    def __init__(self, url: str, reason: str) -> None:
        super().__init__(f"{url}: {reason}")
        self.url = url
        self.reason = reason


def base_url(endpoint: str) -> str:
    """`host:port` or `http://host:port` -> `http://host:port`."""
    return (endpoint if "://" in endpoint else f"http://{endpoint}").rstrip("/")


def prefix_end(prefix: bytes) -> bytes:
    """etcd's range end for a prefix: the prefix with its last byte incremented."""
    end = bytearray(prefix)
    while end and end[-1] == 0xFF:
        end.pop()
    end[-1] += 1
    return bytes(end)


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _call(endpoint: str, path: str, body: dict, timeout: float) -> dict:
    url = f"{base_url(endpoint)}{path}"
    request = urllib.request.Request(url, data=json.dumps(body).encode(), method="POST",
                                     headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310 - operator's etcd
            return json.loads(response.read().decode("utf-8"))
    except urllib.error.HTTPError as error:
        raise EtcdUnreachable(url, f"HTTP {error.code} {error.reason}") from None
    except (urllib.error.URLError, OSError) as error:
        raise EtcdUnreachable(url, str(getattr(error, "reason", error))) from None
    except ValueError as error:
        raise EtcdUnreachable(url, f"not a JSON reply ({error})") from None


def read_prefix(endpoint: str, prefix: str, timeout: float = 5.0) -> list[tuple[str, bytes]]:
    """(key, value) of every key under `prefix`."""
    raw = prefix.encode()
    reply = _call(endpoint, "/v3/kv/range", {"key": _b64(raw), "range_end": _b64(prefix_end(raw))}, timeout)
    return [(base64.b64decode(item.get("key", "")).decode("utf-8", "replace"),
             base64.b64decode(item.get("value", ""))) for item in reply.get("kvs", [])]


def delete_key(endpoint: str, key: str, timeout: float = 5.0) -> int:
    """Delete one key; returns how many were deleted (0 or 1)."""
    reply = _call(endpoint, "/v3/kv/deleterange", {"key": _b64(key.encode())}, timeout)
    return int(reply.get("deleted", 0))
