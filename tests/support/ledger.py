"""A client that keeps writing through a migration and keeps its own ledger of what Milvus acknowledged.

The ledger is the judge of every path that restarts Milvus: at the end every acknowledged insert
must be readable with Strong consistency (unless an acknowledged delete removed it), every
acknowledged delete must stay deleted, and every row's version must be at least the last
acknowledged upsert's. Writes that failed without an acknowledgement (refused, timed out) are
recorded with their error, never counted as lost: a timed-out write may or may not have landed.

Nothing here uses the tool's code: its own pymilvus clients, its own collections.
"""

from __future__ import annotations

import itertools
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

DIM = 4
_TIMEOUT_S = 5.0  # pymilvus retries some refusals until its timeout; keep the loop moving


def _client(uri: str, timeout: float = _TIMEOUT_S, *, connect_s: float = 60.0, **options: Any) -> Any:
    """A client of its own; connecting is retried for `connect_s` (pymilvus may hold a channel that the
    restart broke and give up on it once). `options` go to MilvusClient (e.g. `grpc_options`)."""
    import logging

    from pymilvus import MilvusClient

    logging.getLogger("pymilvus").setLevel(logging.CRITICAL)
    until = time.monotonic() + connect_s
    while True:
        try:
            return MilvusClient(uri=uri, timeout=timeout, dedicated=True, **options)
        except Exception:  # retried until the deadline, then raised
            if time.monotonic() > until:
                raise
            time.sleep(1.0)


def error_kind(error: BaseException) -> str:
    """A short, stable class of a failed write, for the tallies."""
    text = str(error).lower()
    for needle, kind in (
        ("deactivated by the administrator", "write denied (forceDeny)"),
        ("disabled by the administrator", "write denied (forceDeny)"),
        ("ratelimiter", "rate limited"),
        ("rate limit", "rate limited"),
        ("connection refused", "connection refused"),
        ("failed to connect", "connection refused"),
        ("unavailable", "unavailable"),
        ("deadline", "timed out"),
        ("timeout", "timed out"),
        ("not ready", "not ready"),
        ("can't find collection", "collection not found"),
        ("collection not found", "collection not found"),
    ):
        if needle in text:
            return kind
    return type(error).__name__


@dataclass
class Outcome:
    at: float  # time.time() when the call returned
    ok: bool
    kind: str = ""


@dataclass(frozen=True)
class Gap:
    before: float  # the last acknowledged write before it (time.time())
    after: float  # the first acknowledged write after it, or the end of the watch when `open`
    open: bool = False  # no write was acknowledged again before the end of the watch

    @property
    def seconds(self) -> float:
        return self.after - self.before


@dataclass
class Ledger:
    """What one writer did. Ids are never reused, so each id's fate is unambiguous."""

    acked_inserts: set[int] = field(default_factory=set)
    unsure_inserts: set[int] = field(default_factory=set)  # failed: may or may not have landed
    acked_deletes: set[int] = field(default_factory=set)
    unsure_deletes: set[int] = field(default_factory=set)
    acked_version: dict[int, int] = field(default_factory=dict)  # id -> last acknowledged upsert version
    outcomes: list[Outcome] = field(default_factory=list)

    def record(self, ok: bool, error: BaseException | None = None) -> None:
        self.outcomes.append(Outcome(time.time(), ok, "" if ok else error_kind(error)))  # type: ignore[arg-type]

    @property
    def refused(self) -> Counter:
        return Counter(o.kind for o in self.outcomes if not o.ok)

    def longest_gap(self, since: float, until: float) -> Gap | None:
        """The longest time between two acknowledged writes from `since` to `until` (time.time()),
        whether the writes in between failed or hung; when none was acknowledged after the last
        failure, the gap runs to `until` and is `open`. None: fewer than one acknowledged write."""
        acked = sorted(o.at for o in self.outcomes if o.ok and since <= o.at <= until)
        if not acked:
            return None
        last_failure = max((o.at for o in self.outcomes if not o.ok and since <= o.at <= until), default=None)
        closed = [Gap(before, after) for before, after in itertools.pairwise(acked)]
        if last_failure is not None and last_failure > acked[-1]:
            closed.append(Gap(acked[-1], until, open=True))
        return max(closed, key=lambda gap: gap.seconds, default=None)

    def gap(self, after: float) -> tuple[float | None, float | None]:
        """(last acknowledged write before the first failure after `after`, first acknowledged one after it)."""
        failures = [o.at for o in self.outcomes if not o.ok and o.at >= after]
        if not failures:
            return None, None
        first_failure = failures[0]
        before = max((o.at for o in self.outcomes if o.ok and o.at < first_failure), default=None)
        after_ok = min((o.at for o in self.outcomes if o.ok and o.at > failures[-1]), default=None)
        return before, after_ok


def _create_loaded(uri: str, collection: str, *, dim: int, versioned: bool) -> None:
    """A fresh, loaded collection of the writer's own: id, an optional `version`, a FLAT-indexed vector."""
    from pymilvus import DataType

    client = _client(uri, 60.0)
    try:
        if client.has_collection(collection):
            client.drop_collection(collection)
        schema = client.create_schema(auto_id=False, enable_dynamic_field=False)
        schema.add_field("id", DataType.INT64, is_primary=True)
        if versioned:
            schema.add_field("version", DataType.INT64)
        schema.add_field("vector", DataType.FLOAT_VECTOR, dim=dim)
        index = client.prepare_index_params()
        index.add_index(field_name="vector", index_type="FLAT", metric_type="L2")
        client.create_collection(collection, schema=schema, index_params=index)
        client.load_collection(collection)
    finally:
        client.close()


class LedgerWriter(threading.Thread):
    """Inserts a batch every `interval_s`, upserts rows it inserted earlier (a rising `version`),
    deletes some every `delete_every` batches (0: never, likewise `upsert_every`): until stopped.
    Its own collection, its own client (`client_options` go to MilvusClient)."""

    def __init__(self, uri: str, collection: str, *, batch: int = 5, interval_s: float = 0.05,
                 delete_every: int = 10, upsert_every: int = 3, client_options: dict[str, Any] | None = None) -> None:
        super().__init__(name=f"ledger-{collection}", daemon=True)
        self.uri, self.collection = uri, collection
        self.client_options = client_options or {}
        self.batch, self.interval_s = batch, interval_s
        self.delete_every, self.upsert_every = delete_every, upsert_every
        self.ledger = Ledger()
        self._stopping = threading.Event()
        self._next_id = 0
        self._version = 0
        self.crashed: BaseException | None = None

    def create_collection(self) -> None:
        _create_loaded(self.uri, self.collection, dim=DIM, versioned=True)

    def stop(self) -> None:
        self._stopping.set()
        self.join(timeout=60)

    def _rows(self, ids: list[int], version: int) -> list[dict]:
        return [{"id": i, "version": version, "vector": [float(i % 7), 1.0, 0.0, float(version % 5)]} for i in ids]

    def run(self) -> None:
        try:
            self._loop()
        except BaseException as error:  # noqa: BLE001 - surfaced by the test through `crashed`
            self.crashed = error

    def _loop(self) -> None:
        client = _client(self.uri, **self.client_options)
        ledger = self.ledger
        number = 0
        live: list[int] = []  # acknowledged, never deleted: candidates for upsert and delete
        while not self._stopping.is_set():
            number += 1
            ids = list(range(self._next_id, self._next_id + self.batch))
            self._next_id += self.batch
            try:
                client.insert(self.collection, self._rows(ids, 0))
            except Exception as error:  # noqa: BLE001 - every failure is tallied, none is fatal
                ledger.unsure_inserts.update(ids)
                ledger.record(False, error)
            else:
                ledger.acked_inserts.update(ids)
                live.extend(ids)
                ledger.record(True)
            if self.upsert_every and number % self.upsert_every == 0 and len(live) > 2:
                self._version += 1
                target = live[len(live) // 2 : len(live) // 2 + 2]
                try:
                    client.upsert(self.collection, self._rows(target, self._version))
                except Exception as error:  # noqa: BLE001
                    ledger.record(False, error)
                else:
                    for i in target:
                        ledger.acked_version[i] = self._version
                    ledger.record(True)
            if self.delete_every and number % self.delete_every == 0 and len(live) > 4:
                doomed = [live.pop(0), live.pop(0)]
                try:
                    client.delete(self.collection, ids=doomed)
                except Exception as error:  # noqa: BLE001
                    ledger.unsure_deletes.update(doomed)
                    ledger.record(False, error)
                else:
                    ledger.acked_deletes.update(doomed)
                    ledger.record(True)
            self._stopping.wait(self.interval_s)
        client.close()


class HttpLedgerWriter(threading.Thread):
    """Inserts one row every `interval_s` through Milvus's HTTP APIs, alternating the metrics port's
    `/api/v1/entities` and the client port's `/v1/vector/insert` (on 2.3.5 both ignore forceDeny:
    only keeping clients away from Milvus stops them). Its own collection and ledger."""

    def __init__(self, uri: str, metrics_url: str, collection: str, *, interval_s: float = 0.2) -> None:
        super().__init__(name=f"http-ledger-{collection}", daemon=True)
        self.uri, self.metrics_url, self.collection, self.interval_s = uri, metrics_url.rstrip("/"), collection, interval_s
        self.ledger = Ledger()
        self._stopping = threading.Event()
        self.crashed: BaseException | None = None

    def create_collection(self) -> None:
        _create_loaded(self.uri, self.collection, dim=2, versioned=False)

    def stop(self) -> None:
        self._stopping.set()
        self.join(timeout=60)

    def _post(self, url: str, body: dict) -> tuple[int | None, Any]:
        import json
        import urllib.error
        import urllib.request

        request = urllib.request.Request(url, data=json.dumps(body).encode(), method="POST",
                                         headers={"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(request, timeout=3) as response:
                return response.status, json.loads(response.read().decode("utf-8", "replace") or "null")
        except urllib.error.HTTPError as error:
            return error.code, None
        except (OSError, ValueError) as error:
            return None, error

    def _insert(self, number: int) -> tuple[bool, BaseException | None]:
        if number % 2:
            status, body = self._post(f"{self.metrics_url}/api/v1/entities", {
                "collection_name": self.collection, "num_rows": 1,
                "fields_data": [{"field_name": "id", "type": 5, "field": [number]},
                                {"field_name": "vector", "type": 101, "field": [[0.5, 0.5]]}]})
            ok = status == 200 and isinstance(body, dict) and not (body.get("status") or {}).get("error_code") \
                and body.get("insert_cnt") == 1
        else:
            host = self.uri.split("://", 1)[-1].rstrip("/")
            status, body = self._post(f"http://{host}/v1/vector/insert",
                                      {"collectionName": self.collection, "data": [{"id": number, "vector": [0.5, 0.5]}]})
            ok = status == 200 and isinstance(body, dict) and body.get("code") == 200 \
                and (body.get("data") or {}).get("insertCount") == 1
        if ok:
            return True, None
        return False, body if isinstance(body, BaseException) else RuntimeError(f"HTTP {status}: {str(body)[:200]}")

    def run(self) -> None:
        number = 0
        try:
            while not self._stopping.is_set():
                number += 1
                ok, error = self._insert(number)
                if ok:
                    self.ledger.acked_inserts.add(number)
                else:
                    self.ledger.unsure_inserts.add(number)
                self.ledger.record(ok, error)
                self._stopping.wait(self.interval_s)
        except BaseException as error:  # noqa: BLE001 - surfaced by the test through `crashed`
            self.crashed = error


@dataclass
class Verdict:
    lost_inserts: list[int]
    undone_deletes: list[int]
    stale_upserts: list[tuple[int, int, int]]  # (id, acknowledged version, version read)
    acked: int
    refused: Counter

    @property
    def ok(self) -> bool:
        return not (self.lost_inserts or self.undone_deletes or self.stale_upserts)

    def __str__(self) -> str:
        return (f"{self.acked} acknowledged writes; lost inserts {self.lost_inserts[:10]} "
                f"({len(self.lost_inserts)}), undone deletes {self.undone_deletes[:10]} ({len(self.undone_deletes)}), "
                f"stale upserts {self.stale_upserts[:5]} ({len(self.stale_upserts)}); refused {dict(self.refused)}")


def judge(uri: str, writer: LedgerWriter | HttpLedgerWriter, *, deadline_s: float = 180.0) -> Verdict:
    """Read every id the writer ever touched with Strong consistency and compare with its ledger."""
    ledger = writer.ledger
    versioned = isinstance(writer, LedgerWriter)
    client = _client(uri, 60.0)
    try:
        ids = sorted(ledger.acked_inserts | ledger.unsure_inserts | ledger.acked_deletes)
        found: dict[int, int] = {}
        until = time.monotonic() + deadline_s
        for start in range(0, len(ids), 1000):
            chunk = ids[start : start + 1000]
            while True:
                try:
                    rows = client.query(writer.collection, filter=f"id in {chunk}",
                                        output_fields=["id", "version"] if versioned else ["id"],
                                        consistency_level="Strong")
                    break
                except Exception:  # the collection may still be loading after a restart
                    if time.monotonic() > until:
                        raise
                    time.sleep(1.0)
            found.update({int(row["id"]): int(row.get("version", 0)) for row in rows})
    finally:
        client.close()
    gone_by_delete = ledger.acked_deletes | ledger.unsure_deletes
    lost = sorted(i for i in ledger.acked_inserts if i not in found and i not in gone_by_delete)
    undone = sorted(i for i in ledger.acked_deletes if i in found)
    stale = sorted((i, v, found[i]) for i, v in ledger.acked_version.items()
                   if i in found and found[i] < v)
    acked = sum(1 for o in ledger.outcomes if o.ok)
    return Verdict(lost, undone, stale, acked, ledger.refused)


def _ddl_schema(client: Any) -> Any:
    from pymilvus import DataType

    schema = client.create_schema(auto_id=False, enable_dynamic_field=False)
    schema.add_field("id", DataType.INT64, is_primary=True)
    schema.add_field("vector", DataType.FLOAT_VECTOR, dim=DIM)
    return schema


class DdlProber(threading.Thread):
    """Creates a collection every `interval_s` and drops every other one it created: the DDL during the
    window must be refused or survive (an acknowledged create exists at the end, an acknowledged drop
    stays dropped)."""

    def __init__(self, uri: str, prefix: str = "ddl_probe", interval_s: float = 1.0) -> None:
        super().__init__(name="ddl-prober", daemon=True)
        self.uri, self.prefix, self.interval_s = uri, prefix, interval_s
        self.created: list[str] = []
        self.dropped: list[str] = []
        self.outcomes: list[Outcome] = []
        self._stopping = threading.Event()
        self.crashed: BaseException | None = None

    def stop(self) -> None:
        self._stopping.set()
        self.join(timeout=60)

    def run(self) -> None:
        try:
            self._loop()
        except BaseException as error:  # noqa: BLE001 - surfaced by the test through `crashed`
            self.crashed = error

    def _loop(self) -> None:
        client = _client(self.uri)
        number = 0
        while not self._stopping.is_set():
            name = f"{self.prefix}_{number}"
            try:
                client.create_collection(name, schema=_ddl_schema(client))
            except Exception as error:  # noqa: BLE001
                self.outcomes.append(Outcome(time.time(), False, error_kind(error)))
            else:
                self.created.append(name)
                self.outcomes.append(Outcome(time.time(), True))
                if number % 2 == 1:
                    try:
                        client.drop_collection(name)
                    except Exception as error:  # noqa: BLE001
                        self.outcomes.append(Outcome(time.time(), False, error_kind(error)))
                    else:
                        self.dropped.append(name)
                        self.outcomes.append(Outcome(time.time(), True))
            number += 1
            self._stopping.wait(self.interval_s)
        client.close()

    def problems(self, uri: str) -> list[str]:
        """What went wrong: the prober died, an acknowledged create was lost or a drop undone."""
        died = [f"{self.name} crashed: {self.crashed!r}"] if self.crashed else []
        client = _client(uri, 60.0)
        try:
            existing = set(client.list_collections())
        finally:
            client.close()
        kept = [name for name in self.created if name not in self.dropped]
        return (died + [f"acknowledged create of {name} lost" for name in kept if name not in existing]
                + [f"acknowledged drop of {name} undone" for name in self.dropped if name in existing])


class Clients:
    """A gRPC writer, an HTTP writer and a DDL prober on one sandbox, started and judged together."""

    def __init__(self, uri: str, metrics_url: str, tag: str) -> None:
        self.uri = uri
        self.grpc = LedgerWriter(uri, f"ledger_grpc_{tag}")
        self.http = HttpLedgerWriter(uri, metrics_url, f"ledger_http_{tag}")
        self.ddl = DdlProber(uri, prefix=f"ddl_{tag}", interval_s=2.0)

    def __enter__(self) -> Clients:
        self.grpc.create_collection()
        self.http.create_collection()
        for thread in (self.grpc, self.http, self.ddl):
            thread.start()
        time.sleep(2.0)  # some acknowledged writes before the tool starts
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def stop(self) -> None:
        for thread in (self.grpc, self.http, self.ddl):
            if thread.is_alive():
                thread.stop()

    @property
    def collections(self) -> set[str]:
        return {f"default.{self.grpc.collection}", f"default.{self.http.collection}"} | {
            f"default.{name}" for name in self.ddl.created}

    def acknowledged_after(self, moment: float) -> int:
        return sum(self.acknowledged_by_writer(moment).values())

    def acknowledged_by_writer(self, start: float, end: float = float("inf")) -> dict[str, int]:
        """How many writes each writer got acknowledged between two time.time() instants."""
        return {writer.name: sum(1 for o in writer.ledger.outcomes if o.ok and start < o.at < end)
                for writer in (self.grpc, self.http)}

    def wait_for_acknowledged(self, since: float, each: int = 3, wait_s: float = 60.0) -> dict[str, int]:
        """Give every writer up to `wait_s` to get `each` writes acknowledged after `since`; the counts."""
        until = time.monotonic() + wait_s
        while min((counts := self.acknowledged_by_writer(since)).values()) < each and time.monotonic() < until:
            time.sleep(0.2)
        return counts

    def judge(self) -> list[str]:
        """Every problem the ledgers find (empty: nothing acknowledged was lost)."""
        self.stop()
        problems = [f"{writer.name} crashed: {writer.crashed!r}" for writer in (self.grpc, self.http) if writer.crashed]
        for writer in (self.grpc, self.http):
            verdict = judge(self.uri, writer)
            if not verdict.ok:
                problems.append(f"{writer.name}: {verdict}")
        return problems + self.ddl.problems(self.uri)
