"""Milvus's etcd config source, read through etcd's v3 JSON gateway (plain HTTP, no client library).

Milvus reads `<etcd.rootPath>/config/<a>/<b>/<c>` and formats the part after `config/` like a key,
so `by-dev/config/mq/type` sets `mq.type` over both files and environment. Milvus only adds this
source when it uses an external etcd (`etcd.use.embed: false`).
"""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass

from migrator.config.keys import format_key
from migrator.errors import Refused


@dataclass(frozen=True)
class EtcdValue:
    key: str  # the full etcd key, e.g. by-dev/config/mq/type
    value: str


@dataclass(frozen=True)
class EtcdSource:
    """Where to read etcd: `endpoint` as `host:port` or `http://host:port`."""

    endpoint: str
    timeout: float = 3.0  # Milvus's own ReadConfigTimeout

    @property
    def url(self) -> str:
        base = self.endpoint if "://" in self.endpoint else f"http://{self.endpoint}"
        return base.rstrip("/")

    def read_config(self, root_path: str) -> dict[str, EtcdValue]:
        """Every config override under `<root_path>/config/`, by formatted key.

        Raises Refused when etcd cannot be read: an override there would win over any file
        edit, so not knowing it is not a reason to go on.
        """
        import urllib.error
        import urllib.request

        prefix = f"{root_path.strip('/')}/config/" if root_path.strip("/") else "config/"
        body = json.dumps({"key": _b64(prefix.encode()), "range_end": _b64(_prefix_end(prefix.encode()))}).encode()
        request = urllib.request.Request(
            f"{self.url}/v3/kv/range", data=body, headers={"Content-Type": "application/json"}, method="POST"
        )
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:
                reply = json.loads(response.read().decode("utf-8"))
        except urllib.error.HTTPError as error:
            raise self._unreadable(f"HTTP {error.code} {error.reason}") from None
        except (urllib.error.URLError, OSError) as error:
            raise self._unreadable(str(getattr(error, "reason", error))) from None
        except ValueError as error:
            raise self._unreadable(f"not a JSON reply ({error})") from None
        overrides: dict[str, EtcdValue] = {}
        for item in reply.get("kvs", []):
            key = base64.b64decode(item.get("key", "")).decode("utf-8", "replace")
            value = base64.b64decode(item.get("value", "")).decode("utf-8", "replace")
            overrides[format_key(key[len(prefix) :])] = EtcdValue(key, value)
        return overrides

    def _unreadable(self, reason: str) -> Refused:
        return Refused(
            f"cannot read Milvus config overrides from etcd at {self.url}/v3/kv/range: {reason}",
            hint="this Milvus uses an external etcd (etcd.use.embed is false), whose config keys win over "
            "every file; give a reachable --etcd endpoint (etcd's HTTP gateway) or check etcd is up",
        )


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _prefix_end(prefix: bytes) -> bytes:
    """etcd's range end for a prefix: the prefix with its last byte incremented."""
    end = bytearray(prefix)
    while end and end[-1] == 0xFF:
        end.pop()
    end[-1] += 1
    return bytes(end)
