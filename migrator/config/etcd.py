"""Milvus's etcd config source, read through etcd's v3 JSON gateway (plain HTTP, no client library).

Milvus reads `<etcd.rootPath>/config/<a>/<b>/<c>` and formats the part after `config/` like a key,
so `by-dev/config/mq/type` sets `mq.type` over both files and environment. Milvus only adds this
source when it uses an external etcd (`etcd.use.embed: false`).

Milvus 2.6 pins its MQ at `<rootPath>/config/mqtype` (milvus/etcd.py, MQ_PIN_NAME). That name
formats to `mqtype`, like `mq.type`, so it is read here as what it is to Milvus: an etcd override
of mq.type (2.3-2.5 with an external etcd obey it too). `config/layers.py` labels it the 2.6 pin.
"""

from __future__ import annotations

from dataclasses import dataclass

from migrator.config.keys import format_key
from migrator.errors import Refused
from migrator.milvus.etcd import EtcdUnreachable, base_url, read_config_keys


@dataclass(frozen=True)
class EtcdValue:
    key: str  # the full etcd key, e.g. by-dev/config/mq/type
    value: str
    name: str = ""  # the part after `config/` that Milvus formats: mq/type, mqtype, natsmq.server.port

    @property
    def formatted(self) -> str:
        return format_key(self.name)


@dataclass(frozen=True)
class EtcdSource:
    """Where to read etcd: `endpoint` as `host:port` or `http://host:port`."""

    endpoint: str
    timeout: float = 3.0  # Milvus's own ReadConfigTimeout

    @property
    def url(self) -> str:
        return base_url(self.endpoint)

    def read_config(self, root_path: str) -> list[EtcdValue]:
        """Every key under `<root_path>/config/`, in etcd's (sorted) order: when two names format
        alike (`mq/type`, `mqtype`), the later one wins, as in Milvus's map of them.

        Raises Refused when etcd cannot be read: an override there would win over any file
        edit, so not knowing it is not a reason to go on.
        """
        try:
            items = read_config_keys(self.endpoint, root_path, timeout=self.timeout)
        except EtcdUnreachable as error:
            raise self._unreadable(error.reason) from None
        return [EtcdValue(key, value, name) for name, (key, value) in items.items()]

    def _unreadable(self, reason: str) -> Refused:
        return Refused(
            f"cannot read Milvus config overrides from etcd at {self.url}/v3/kv/range: {reason}",
            hint="this Milvus uses an external etcd (etcd.use.embed is false), whose config keys win over "
            "every file; give a reachable --etcd endpoint (etcd's HTTP gateway) or check etcd is up",
        )
