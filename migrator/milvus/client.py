"""The pymilvus adapter: the few calls the migration needs, with deadlines and retries.

pymilvus is imported lazily (it pulls grpc and pandas). Every error coming out of here is a
MilvusError subclass carrying a message with no secret in it.
"""

from __future__ import annotations

import logging
import re
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Callable, Iterator

from migrator.errors import NotRolledBack
from migrator.util.redact import redact_text

PROBE_COLLECTION = "milvus_migrate_probe"
_WRITE_DENIED = re.compile(r"deactivated by the administrator|disabled by the administrator|force.?deny", re.I)
# Retried while Milvus settles after a restart (docs/milvus.md, "FlushAll", "Stopping and starting").
_TRANSIENT = re.compile(
    r"node not match|not ready|unavailable|connection refused|deadline exceeded|not healthy|"
    r"channel not found|service not ready|collection not loaded|no available|timeout|not serviceable",
    re.I,
)


class MilvusError(NotRolledBack):
    """A Milvus call failed."""


class MilvusUnavailable(MilvusError):
    """Milvus cannot be reached, or did not answer before a deadline."""


@dataclass
class CollectionFacts:
    database: str
    name: str
    loaded: bool
    rows: int  # count(*) under Strong consistency when loaded, flushed row count otherwise

    @property
    def key(self) -> str:
        return f"{self.database}.{self.name}"


@dataclass
class Snapshot:
    version: str
    collections: list[CollectionFacts] = field(default_factory=list)

    def to_dict(self) -> dict:
        return {
            "version": self.version,
            "collections": [c.__dict__ | {"key": c.key} for c in self.collections],
        }

    @classmethod
    def from_dict(cls, raw: dict) -> "Snapshot":
        return cls(
            version=raw["version"],
            collections=[
                CollectionFacts(database=c["database"], name=c["name"], loaded=c["loaded"], rows=c["rows"])
                for c in raw["collections"]
            ],
        )


def is_write_denied(error: BaseException) -> bool:
    return bool(_WRITE_DENIED.search(str(error)))


def _is_transient(error: BaseException) -> bool:
    return bool(_TRANSIENT.search(str(error)))


def retry(call: Callable[[], Any], *, deadline_s: float, what: str, first_delay: float = 0.5) -> Any:
    """Call until it succeeds or a non-transient error or the deadline; backoff up to 5 s."""
    until = time.monotonic() + deadline_s
    delay = first_delay
    while True:
        try:
            return call()
        except Exception as error:  # noqa: BLE001 - pymilvus raises many types; classified by text
            if not _is_transient(error) or time.monotonic() + delay > until:
                raise MilvusUnavailable(f"{what}: {_short(error)}") from error
        time.sleep(delay)
        delay = min(delay * 2, 5.0)


def _short(error: BaseException) -> str:
    # pymilvus messages may quote the uri it was given, credentials included.
    return redact_text(str(error).replace("\n", " "))[:300]


class MilvusAdapter:
    """One MilvusClient per database: `use_database` of pymilvus 3 calls DescribeDatabase,
    which a 2.3 server does not implement, while `db_name=` at construction works everywhere."""

    def __init__(self, uri: str, token: str | None, timeout: float) -> None:
        self.uri = uri
        self._token = token or ""
        self._timeout = timeout
        self._clients: dict[str, Any] = {}

    def client(self, database: str = "default") -> Any:
        if database not in self._clients:
            from pymilvus import MilvusClient

            try:
                self._clients[database] = MilvusClient(uri=self.uri, token=self._token, db_name=database,
                                                       timeout=self._timeout)
            except Exception as error:  # noqa: BLE001
                raise MilvusUnavailable(f"cannot connect to Milvus at {redact_text(self.uri)}: {_short(error)}") from error
        return self._clients[database]

    def close(self) -> None:
        for client in self._clients.values():
            try:
                client.close()
            except Exception:  # noqa: BLE001 - closing a dead channel must not hide the real error
                pass
        self._clients.clear()

    @classmethod
    @contextmanager
    def connect(cls, uri: str, *, token: str | None = None, timeout: float = 10.0) -> Iterator["MilvusAdapter"]:
        # pymilvus logs every failed RPC with a traceback; a rejected probe is expected here and
        # every real failure reaches the operator once, as a domain error.
        logging.getLogger("pymilvus").setLevel(logging.CRITICAL)
        adapter = cls(uri, token, timeout)
        try:
            adapter.client("default")
            yield adapter
        finally:
            adapter.close()

    # -- facts -----------------------------------------------------------------------------

    def version(self) -> str:
        return str(self.client().get_server_version())

    def databases(self) -> list[str]:
        return sorted(self.client().list_databases())

    def collections(self, database: str) -> list[str]:
        return sorted(self.client(database).list_collections())

    def is_loaded(self, database: str, collection: str) -> bool:
        state = self.client(database).get_load_state(collection)
        return "Loaded" in str(state.get("state"))

    def count(self, database: str, collection: str, *, loaded: bool, deadline_s: float = 120.0) -> int:
        client = self.client(database)
        if loaded:
            def strong_count() -> int:
                result = client.query(collection, output_fields=["count(*)"], consistency_level="Strong")
                return int(result[0]["count(*)"])

            return retry(strong_count, deadline_s=deadline_s, what=f"count {database}.{collection}")
        stats = client.get_collection_stats(collection)
        return int(stats["row_count"])

    def snapshot(self, *, deadline_s: float = 120.0) -> Snapshot:
        facts = []
        for database in self.databases():
            for name in self.collections(database):
                if name == PROBE_COLLECTION:
                    continue
                loaded = self.is_loaded(database, name)
                facts.append(CollectionFacts(database, name, loaded, self.count(database, name, loaded=loaded,
                                                                                 deadline_s=deadline_s)))
        return Snapshot(version=self.version(), collections=facts)

    # -- flush -----------------------------------------------------------------------------

    def flush_all(self, *, deadline_s: float, poll_s: float = 0.2) -> float:
        """FlushAll then wait for GetFlushAllState; retry `node not match` until the deadline.

        pymilvus's own wait polls every 5 s; this polls every `poll_s`, because FlushAll
        sits inside the write-downtime window.
        """
        from pymilvus.client.prepare import Prepare
        from pymilvus.client.utils import check_status  # type: ignore[attr-defined]

        handler = self.client()._get_connection()  # noqa: SLF001 - the one public-less call we need
        until = time.monotonic() + deadline_s
        started = time.monotonic()

        def request() -> int:
            response = handler._stub.FlushAll(Prepare.flush_all_request(""), timeout=30)  # noqa: SLF001
            check_status(response.status)
            return int(response.flush_all_ts)

        flush_ts = retry(request, deadline_s=deadline_s, what="FlushAll")
        while not retry(lambda: handler.get_flush_all_state(flush_ts, timeout=30),
                        deadline_s=max(until - time.monotonic(), 1.0), what="GetFlushAllState"):
            if time.monotonic() > until:
                raise MilvusUnavailable(f"FlushAll not complete within {deadline_s:.0f} s (flush_all_ts={flush_ts})")
            time.sleep(poll_s)
        return time.monotonic() - started

    # -- load ------------------------------------------------------------------------------

    def load(self, database: str, collection: str, *, deadline_s: float) -> None:
        client = self.client(database)
        retry(lambda: client.load_collection(collection, timeout=deadline_s), deadline_s=deadline_s,
              what=f"load {database}.{collection}")

    # -- probe -----------------------------------------------------------------------------

    def ensure_probe(self) -> None:
        """A tiny collection the tool owns, in the default database, loaded."""
        from pymilvus import DataType

        client = self.client()
        if not client.has_collection(PROBE_COLLECTION):
            schema = client.create_schema(auto_id=False, enable_dynamic_field=False)
            schema.add_field("id", DataType.INT64, is_primary=True)
            schema.add_field("vector", DataType.FLOAT_VECTOR, dim=2)
            index = client.prepare_index_params()
            index.add_index(field_name="vector", index_type="FLAT", metric_type="L2")
            client.create_collection(PROBE_COLLECTION, schema=schema, index_params=index)
        client.load_collection(PROBE_COLLECTION)

    def probe_insert(self, probe_id: int) -> bool:
        """True when the insert went through, False when Milvus denied the write."""
        try:
            self.client().insert(PROBE_COLLECTION, [{"id": probe_id, "vector": [0.0, 1.0]}])
        except Exception as error:  # noqa: BLE001
            if is_write_denied(error):
                return False
            raise MilvusError(f"probe insert failed: {_short(error)}") from error
        return True

    def probe_visible(self, probe_id: int, *, deadline_s: float) -> bool:
        def query() -> list:
            return self.client().query(PROBE_COLLECTION, filter=f"id == {probe_id}", output_fields=["id"],
                                      consistency_level="Strong")

        return bool(retry(query, deadline_s=deadline_s, what="probe query"))

    def drop_probe(self) -> None:
        client = self.client()
        if client.has_collection(PROBE_COLLECTION):
            client.drop_collection(PROBE_COLLECTION)
