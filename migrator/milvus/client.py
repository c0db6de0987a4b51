"""The pymilvus adapter: the few calls the migration needs, with deadlines and retries.

pymilvus is imported lazily (it pulls grpc and pandas). Every error coming out of here is a
MilvusError subclass carrying a message with no secret in it.
"""

from __future__ import annotations

import logging
import re
import socket
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor, wait
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from typing import Any, TypedDict
from urllib.parse import urlsplit

from migrator.errors import NotRolledBack
from migrator.util.deadline import Deadline
from migrator.util.redact import redact_text

# Counts run this many at a time: a Strong count waits for the next time tick (~200 ms on 2.3.5),
# not for this host's CPU, so at 200 collections one at a time is 40 s of waiting (docs/milvus.md,
# "At scale").
COUNT_WORKERS = 16
PROBE_COLLECTION = "milvus_migrate_probe"
CLIENT_VIEW_COLLECTION = "milvus_migrate_client_view"
TOOL_COLLECTIONS = (PROBE_COLLECTION, CLIENT_VIEW_COLLECTION)  # the tool's own: never counted
# gRPC keeps one reconnect backoff per address for the whole process, growing to 120 s: after a
# restart the tool's next client would wait it out (docs/milvus.md, "The write window").
GRPC_OPTIONS = {"grpc.use_local_subchannel_pool": 1, "grpc.initial_reconnect_backoff_ms": 100,
                "grpc.max_reconnect_backoff_ms": 1000}
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


class CollectionRecord(TypedDict):
    """A collection as a snapshot is saved; mypy holds it to the plan's SnapshotCollection."""

    database: str
    name: str
    loaded: bool
    rows: int
    key: str


class SnapshotRecord(TypedDict):
    """A snapshot as the plan and the journal save it (migration/plan.py PlanSnapshot)."""

    version: str
    collections: list[CollectionRecord]


@dataclass
class Snapshot:
    version: str
    collections: list[CollectionFacts] = field(default_factory=list)

    def to_dict(self) -> SnapshotRecord:
        return {
            "version": self.version,
            "collections": [CollectionRecord(database=c.database, name=c.name, loaded=c.loaded, rows=c.rows,
                                             key=c.key) for c in self.collections],
        }

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any]) -> Snapshot:
        return cls(
            version=raw["version"],
            collections=[
                CollectionFacts(database=c["database"], name=c["name"], loaded=c["loaded"], rows=c["rows"])
                for c in raw["collections"]
            ],
        )


@dataclass(frozen=True)
class FlushAllResult:
    seconds: float
    flush_ts: int  # every channel checkpoint is at or past this timestamp once it completed


_CLIENT_ERRORS = (
    (re.compile(r"deactivated by the administrator|disabled by the administrator", re.I), "writes denied (forceDeny)"),
    (re.compile(r"ratelimiter|rate limit", re.I), "rate limited"),
    (re.compile(r"connection refused|fail(ed)? (to )?connect", re.I), "connection refused"),
    (re.compile(r"unavailable", re.I), "unavailable"),
    (re.compile(r"deadline|timed? ?out", re.I), "timed out"),
    (re.compile(r"not ready|not healthy|not serviceable", re.I), "not ready"),
)


def client_error_kind(error: BaseException) -> str:
    """A short, stable name for what a client saw when a write failed."""
    text = str(error)
    return next((kind for pattern, kind in _CLIENT_ERRORS if pattern.search(text)), type(error).__name__)


def is_write_denied(error: BaseException) -> bool:
    return bool(_WRITE_DENIED.search(str(error)))


def _is_transient(error: BaseException) -> bool:
    return bool(_TRANSIENT.search(str(error)))


def retry(call: Callable[[], Any], *, deadline_s: float, what: str, first_delay: float = 0.5,
          alive: Callable[[], bool] | None = None, max_delay: float = 5.0) -> Any:
    """Call until it succeeds or a non-transient error or the deadline; backoff up to 5 s. With
    `alive`, give up as soon as it says Milvus is gone: waiting out a deadline for a dead process
    only keeps clients away longer."""
    until = time.monotonic() + deadline_s
    delay = first_delay
    while True:
        try:
            return call()
        except Exception as error:  # pymilvus raises many types; classified by text
            if not _is_transient(error) or time.monotonic() + delay > until:
                raise MilvusUnavailable(f"{what}: {_short(error)}") from error
            if alive is not None and not alive():
                raise MilvusUnavailable(f"{what}: Milvus is not running ({_short(error)})") from error
        time.sleep(delay)
        delay = min(delay * 2, max_delay)


def refused_address(uri: str) -> str | None:
    """The uri's `host:port` when a TCP connect there is refused at once, else None. pymilvus waits
    out its whole timeout on such an address (gRPC reconnects in the background), which tells
    nothing more. Only a refusal counts: an address that is unreachable, filtered or slow is left
    to pymilvus and its deadline."""
    parts = urlsplit(uri)
    try:
        host, port = parts.hostname, parts.port or (443 if parts.scheme == "https" else 19530)
    except ValueError:  # a port that is no number: pymilvus says what is wrong with the uri
        return None
    if parts.scheme not in ("http", "https", "tcp", "grpc") or not host:
        return None
    try:
        socket.create_connection((host, port), timeout=1.0).close()
    except ConnectionRefusedError:
        return f"{host}:{port}"
    except OSError:
        return None
    return None


def _within(seconds: float, what: str, call: Callable[[], Any]) -> Any:
    """`call()`, given up after `seconds`: pymilvus retries a connection's first call to a Milvus
    that accepts TCP but never answers (frozen) for far longer than any timeout it is given. The
    call is left to end on its own in its thread; its client, if it ever comes, is never used."""
    outcome: dict[str, Any] = {}

    def run() -> None:
        try:
            outcome["value"] = call()
        except BaseException as error:  # noqa: BLE001 - handed to the caller below
            outcome["error"] = error

    worker = threading.Thread(target=run, name=f"within-{what}", daemon=True)
    worker.start()
    worker.join(seconds)
    if worker.is_alive():
        raise MilvusUnavailable(f"{what}: no answer within {seconds:.0f} s (Milvus accepts connections but does "
                                "not answer: frozen, or overloaded)")
    if "error" in outcome:
        raise outcome["error"]
    return outcome["value"]


def _left(until: float) -> float:
    """Seconds to a time.monotonic() instant, at least a moment: a call is made once more at worst."""
    return max(until - time.monotonic(), 0.5)


def _short(error: BaseException) -> str:
    """One line for the operator: pymilvus's own message with its code (not the repr of its
    exception, `<MilvusException: (code=2, message=...)>`); redacted, since pymilvus messages may
    quote the uri it was given, credentials included."""
    message, code = getattr(error, "message", None), getattr(error, "code", None)
    text = f"{message} (code {code})" if isinstance(message, str) and code is not None else str(error)
    return redact_text(text.replace("\n", " "))[:300]


class MilvusAdapter:
    """One MilvusClient per database: `use_database` of pymilvus 3 calls DescribeDatabase,
    which a 2.3 server does not implement, while `db_name=` at construction works everywhere."""

    def __init__(self, uri: str, token: str | None, timeout: float, alive: Callable[[], bool] | None = None) -> None:
        self.uri = uri
        self.alive = alive  # is the Milvus process still there: its retries give up when it is not
        self._token = token or ""
        self._timeout = timeout
        self._clients: dict[str, Any] = {}
        self._lock = threading.Lock()  # the counts share the adapter across threads

    def client(self, database: str = "default") -> Any:
        """The client of `database`, connected on first use. A connection refused is retried until
        the adapter's timeout while `alive` says the Milvus process is there (coming up after a
        restart); without `alive` it fails at once. Each adapter has connections of its own
        (`dedicated`): pymilvus shares one per address otherwise, and repairs a shared one under a
        process-wide lock, so another thread's failing client (the client view, a frozen Milvus)
        would hold this one up."""
        with self._lock:
            if database not in self._clients:
                from pymilvus import MilvusClient

                until = time.monotonic() + self._timeout

                def connect() -> Any:
                    refused = refused_address(self.uri)
                    if refused is not None:  # transient: retried while `alive` says Milvus is starting
                        raise ConnectionRefusedError(f"connection refused: nothing listens on {refused} yet")
                    # Each attempt waits at most what is left: a Milvus that accepts connections and
                    # never answers (frozen) must not hold a step twice its deadline.
                    return MilvusClient(uri=self.uri, token=self._token, db_name=database,
                                        timeout=max(until - time.monotonic(), 0.5), dedicated=True,
                                        grpc_options=GRPC_OPTIONS)

                # Without `alive` nothing says Milvus is coming: a refusal is the answer, at once.
                refused = refused_address(self.uri) if self.alive is None else None
                if refused is not None:
                    raise MilvusUnavailable(f"cannot connect to Milvus at {redact_text(self.uri)}: "
                                            f"connection refused, nothing listens on {refused}")
                try:
                    self._clients[database] = _within(
                        self._timeout + 1.0, f"connect to {redact_text(self.uri)}",
                        lambda: retry(connect, deadline_s=self._timeout, what="connect", alive=self.alive,
                                      first_delay=0.2, max_delay=1.0))
                except MilvusUnavailable as error:
                    raise MilvusUnavailable(f"cannot connect to Milvus at {redact_text(self.uri)}: "
                                            f"{_short(error.__cause__ or error)}") from error
            return self._clients[database]

    def close(self) -> None:
        for client in self._clients.values():
            # Closing a dead channel must not hide the real error.
            with suppress(Exception):
                client.close()
        self._clients.clear()

    @classmethod
    @contextmanager
    def connect(cls, uri: str, *, token: str | None = None, timeout: float = 10.0,
                alive: Callable[[], bool] | None = None) -> Iterator[MilvusAdapter]:
        # pymilvus logs every failed RPC with a traceback; a rejected probe is expected here and
        # every real failure reaches the operator once, as a domain error.
        logging.getLogger("pymilvus").setLevel(logging.CRITICAL)
        adapter = cls(uri, token, timeout, alive)
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
        """Loaded, or being loaded again (querycoord restores the load after a restart)."""
        state = str(self.client(database).get_load_state(collection).get("state"))
        return "Loaded" in state or "Loading" in state

    def stored_rows(self, database: str, collection: str) -> int:
        """Rows in flushed segments as datacoord counts them (deleted ones included until compaction)."""
        return int(self.client(database).get_collection_stats(collection)["row_count"])

    def count(self, database: str, collection: str, *, loaded: bool, deadline_s: float = 120.0) -> int:
        client = self.client(database)
        if loaded:
            def strong_count() -> int:
                result = client.query(collection, output_fields=["count(*)"], consistency_level="Strong")
                return int(result[0]["count(*)"])

            return retry(strong_count, deadline_s=deadline_s, what=f"count {database}.{collection}", alive=self.alive)
        return self.stored_rows(database, collection)

    def collection_channels(self, *, deadline_s: float = 120.0) -> dict[str, tuple[int, int]]:
        """database.collection -> (collection id, shards): whose channel checkpoints must move."""
        keys = [(database, name) for database in self.databases() for name in self.collections(database)]

        def describe(key: tuple[str, str], until: float) -> tuple[int, int]:
            described = self.client(key[0]).describe_collection(key[1])
            return int(described["collection_id"]), int(described["num_shards"])

        found = self.in_parallel(describe, keys, deadline_s=deadline_s, what="describe")
        return {f"{database}.{name}": channels for (database, name), channels in zip(keys, found, strict=True)}

    def user_collections(self) -> list[tuple[str, str]]:
        """(database, collection) of every collection but the tool's own."""
        return [(database, name) for database in self.databases() for name in self.collections(database)
                if name not in TOOL_COLLECTIONS]

    def snapshot(self, *, deadline_s: float = 120.0) -> Snapshot:
        """Every collection's load state and row count: a Strong count for a loaded one, datacoord's
        stored rows for one that is not (loading it would change it). Counted in parallel, all
        within one deadline."""

        def facts(key: tuple[str, str], until: float) -> CollectionFacts:
            database, name = key
            loaded = self.is_loaded(database, name)
            return CollectionFacts(database, name, loaded, self.count(database, name, loaded=loaded,
                                                                      deadline_s=_left(until)))

        return Snapshot(version=self.version(), collections=self.in_parallel(facts, self.user_collections(),
                                                                              deadline_s=deadline_s, what="count"))

    def stored_snapshot(self, *, deadline_s: float = 120.0) -> Snapshot:
        """Every collection's load state and datacoord's stored rows (persisted rows, deleted ones
        included until compaction): no collection needs to be loaded, so this holds the same right
        after a restart as before it (docs/decisions/0022). In parallel, all within one deadline."""

        def facts(key: tuple[str, str], until: float) -> CollectionFacts:
            database, name = key
            return CollectionFacts(database, name, self.is_loaded(database, name), self.stored_rows(database, name))

        return Snapshot(version=self.version(), collections=self.in_parallel(facts, self.user_collections(),
                                                                              deadline_s=deadline_s,
                                                                              what="stored rows"))

    def stored_counts(self, collections: list[CollectionFacts], *, deadline_s: float) -> dict[str, int]:
        """key -> datacoord's stored rows of each collection now, in parallel within one deadline."""
        found = self.in_parallel(lambda facts, until: self.stored_rows(facts.database, facts.name), collections,
                                 deadline_s=deadline_s, what="stored rows")
        return {facts.key: rows for facts, rows in zip(collections, found, strict=True)}

    def probe_rows(self) -> int:
        """Stored rows of the probe collection (0 when it does not exist)."""
        if not self.client().has_collection(PROBE_COLLECTION):
            return 0
        return self.stored_rows("default", PROBE_COLLECTION)

    def answers_a_search(self, database: str, collection: str) -> bool:
        """Does a loaded collection serve reads: a search (a query of its count where it has no float
        vector) answered with Eventually consistency. False while it is being loaded again."""
        from pymilvus import DataType

        client = self.client(database)
        try:
            described = client.describe_collection(collection)
            vector = next((f for f in described.get("fields", []) if f.get("type") == DataType.FLOAT_VECTOR), None)
            if vector is not None:
                client.search(collection, data=[[0.0] * int(vector["params"]["dim"])], limit=1,
                              anns_field=vector["name"], consistency_level="Eventually", timeout=10)
            else:
                client.query(collection, output_fields=["count(*)"], consistency_level="Eventually", timeout=10)
        except Exception as error:  # not loaded yet, or not served yet: asked again later
            if _is_transient(error) or "not loaded" in str(error).lower():
                return False
            raise MilvusError(f"search {database}.{collection}: {_short(error)}") from error
        return True

    def scale(self, collections: list[CollectionFacts], *, deadline_s: float = 120.0) -> dict[str, int]:
        """What a migration's write-downtime grows with, beyond the snapshot (the plan's estimate,
        migration/costs.py): partitions, the flushed segments a reload of the loaded collections
        loads, and the rows not yet in a flushed segment (replayed from the MQ at each restart)."""

        def one(facts: CollectionFacts, until: float) -> tuple[int, int, int]:
            client = self.client(facts.database)
            partitions = len(client.list_partitions(facts.name))
            segments = client.list_persistent_segments(facts.name)
            return partitions, len(segments), sum(int(segment.num_rows) for segment in segments)

        found = self.in_parallel(one, collections, deadline_s=deadline_s, what="segments")
        loaded = [(facts, result) for facts, result in zip(collections, found, strict=True) if facts.loaded]
        return {
            "collections": len(collections),
            "loaded": len(loaded),
            "partitions": sum(partitions for partitions, _, _ in found),
            "loaded_segments": sum(segments for _, (_, segments, _) in loaded),
            "rows": sum(facts.rows for facts in collections),
            # A Strong count sees every live row; datacoord's flushed segments hold the flushed ones.
            "unflushed_rows": sum(max(facts.rows - flushed, 0) for facts, (_, _, flushed) in loaded),
        }

    def counts(self, collections: list[CollectionFacts], *, deadline_s: float) -> dict[str, tuple[int, float]]:
        """key -> (rows, seconds) of each collection as it is now: a loaded one is loaded again (querycoord
        restores it after a restart; this waits for it) and answers a Strong count, one that is not gives
        datacoord's stored rows. In parallel, all within one deadline."""

        def count(facts: CollectionFacts, until: float) -> tuple[int, float]:
            began = time.monotonic()
            if facts.loaded:
                self.load(facts.database, facts.name, deadline_s=_left(until))
            rows = self.count(facts.database, facts.name, loaded=facts.loaded, deadline_s=_left(until))
            return rows, time.monotonic() - began

        found = self.in_parallel(count, collections, deadline_s=deadline_s, what="count")
        return {facts.key: result for facts, result in zip(collections, found, strict=True)}

    def in_parallel(self, call: Callable[[Any, float], Any], items: list[Any], *, deadline_s: float,
                    what: str) -> list[Any]:
        """call(item, until) for every item, COUNT_WORKERS at a time, all by one deadline (`until`, a
        time.monotonic() instant); results in the order of `items`. At the deadline the calls still
        running are given up (they end when the adapter closes) and the first failure is raised."""
        until = time.monotonic() + deadline_s

        def one(item: Any) -> Any:
            if time.monotonic() >= until:
                raise MilvusUnavailable(f"{what}: no time left of the {deadline_s:.0f} s deadline")
            return call(item, until)

        # Not a `with` block: its exit would wait for calls still blocked in pymilvus past the deadline
        # (a frozen Milvus; pymilvus reconnecting). Those are left to fail on their own when the
        # adapter's connections close.
        pool = ThreadPoolExecutor(max_workers=COUNT_WORKERS, thread_name_prefix=what)
        try:
            futures = [pool.submit(one, item) for item in items]
            done, pending = wait(futures, timeout=max(until - time.monotonic(), 0.0) + 1.0)
        finally:
            pool.shutdown(wait=False, cancel_futures=True)
        failures = [error for future in futures if future in done and (error := future.exception()) is not None]
        if pending:
            failures.insert(0, MilvusUnavailable(f"{what}: {len(pending)} of {len(items)} did not answer within "
                                                 f"{deadline_s:.0f} s"))
        if failures:
            first = failures[0]
            message = first.message if isinstance(first, MilvusError) else _short(first)
            more = f" (and {len(failures) - 1} more of {len(items)})" if len(failures) > 1 else ""
            raise MilvusUnavailable(f"{message}{more}") from first
        return [future.result() for future in futures]

    # -- flush -----------------------------------------------------------------------------

    def flush_all(self, *, deadline_s: float, poll_s: float = 0.05, nudge_s: float = 2.0) -> FlushAllResult:
        """FlushAll then wait for GetFlushAllState; retry `node not match` until the deadline.

        pymilvus's own wait polls every 5 s; this polls every `poll_s`, because FlushAll
        sits inside the write-downtime window. Milvus takes the FlushAll timestamp after the
        flush timestamps it hands each channel, so a channel with nothing to flush has its
        checkpoint forced to just below it and then waits for the periodic checkpoint update
        (dataNode.channel.updateChannelCheckpointInterval, 60 s). Each further FlushAll, every
        `nudge_s` while waiting, hands out flush timestamps above the first one's and so forces
        those checkpoints past it (docs/milvus.md, "FlushAll").
        """
        from pymilvus.client.prepare import Prepare
        from pymilvus.client.utils import check_status

        handler = self.client()._get_connection()  # noqa: SLF001 - the one public-less call we need
        deadline = Deadline(deadline_s)
        started = time.monotonic()

        def request() -> int:
            response = handler._stub.FlushAll(Prepare.flush_all_request(""), timeout=30)  # noqa: SLF001
            check_status(response.status)
            return int(response.flush_all_ts)

        flush_ts = retry(request, deadline_s=deadline_s, what="FlushAll", alive=self.alive)
        nudged = time.monotonic()
        while not retry(lambda: handler.get_flush_all_state(flush_ts, timeout=30),
                        deadline_s=deadline.left(), what="GetFlushAllState", alive=self.alive):
            if deadline.passed():
                raise MilvusUnavailable(f"FlushAll not complete within {deadline_s:.0f} s (flush_all_ts={flush_ts})")
            if time.monotonic() - nudged >= nudge_s:
                retry(request, deadline_s=deadline.left(), what="FlushAll", alive=self.alive)
                nudged = time.monotonic()
            time.sleep(poll_s)
        return FlushAllResult(seconds=time.monotonic() - started, flush_ts=flush_ts)

    # -- load ------------------------------------------------------------------------------

    def load(self, database: str, collection: str, *, deadline_s: float) -> None:
        client = self.client(database)
        retry(lambda: client.load_collection(collection, timeout=deadline_s), deadline_s=deadline_s,
              what=f"load {database}.{collection}", alive=self.alive)

    # -- probe -----------------------------------------------------------------------------

    def ensure_probe(self, *, deadline_s: float = 60.0, name: str = PROBE_COLLECTION, load: bool = True) -> None:
        """A tiny collection the tool owns, in the default database, loaded unless `load` is False
        (retried while Milvus settles after a restart). Inserts need no load: after a restart
        querycoord loads every loaded collection again first, which takes long at scale."""
        from pymilvus import DataType

        client = self.client()

        def create_and_load() -> None:
            if not client.has_collection(name):
                schema = client.create_schema(auto_id=False, enable_dynamic_field=False)
                schema.add_field("id", DataType.INT64, is_primary=True)
                schema.add_field("vector", DataType.FLOAT_VECTOR, dim=2)
                client.create_collection(name, schema=schema)
            if load:
                if not client.list_indexes(name):
                    index = client.prepare_index_params()
                    index.add_index(field_name="vector", index_type="FLAT", metric_type="L2")
                    client.create_index(name, index)
                client.load_collection(name)

        retry(create_and_load, deadline_s=deadline_s, what=f"create the collection {name}", alive=self.alive)

    def probe_insert(self, probe_id: int) -> bool:
        """True when the insert went through, False when Milvus denied the write."""
        try:
            self.client().insert(PROBE_COLLECTION, [{"id": probe_id, "vector": [0.0, 1.0]}])
        except Exception as error:
            if is_write_denied(error):
                return False
            raise MilvusError(f"probe insert failed: {_short(error)}") from error
        return True

    def probe_visible(self, probe_id: int, *, deadline_s: float) -> bool:
        def query() -> list:
            return self.client().query(PROBE_COLLECTION, filter=f"id == {probe_id}", output_fields=["id"],
                                      consistency_level="Strong")

        return bool(retry(query, deadline_s=deadline_s, what="probe query", alive=self.alive))

    def drop_probe(self, name: str = PROBE_COLLECTION) -> None:
        client = self.client()
        if client.has_collection(name):
            client.drop_collection(name)
