"""Seed a sandbox with many small collections (bench_scale.py): loaded ones, some not loaded, some
with 16 partitions, and optionally one big collection. Few rows per collection: at 200 collections
seeding dominates the bench otherwise; the big one carries the row-count cost on its own.

Collections are named `scale_<n>` (loaded), `scale_cold_<n>` (not loaded), `scale_parts_<n>`
(loaded, 16 partitions), `scale_big` (the big one), so growing from one size to the next only
adds the missing ones.
"""

from __future__ import annotations

import logging
import random
import time
from dataclasses import dataclass
from typing import Any

DIM = 8
ROWS = 100  # per small collection
PARTITIONS = 16
BIG = "scale_big"


@dataclass(frozen=True)
class Mix:
    loaded: int  # loaded collections, those with partitions included
    cold: int  # not loaded
    partitioned: int  # loaded, 16 partitions each

    @classmethod
    def for_size(cls, loaded: int) -> "Mix":
        """`loaded` loaded collections, a tenth of them with 16 partitions, plus a tenth as many not loaded."""
        tenth = max(1, loaded // 10)
        return cls(loaded=loaded, cold=tenth, partitioned=tenth)

    def names(self) -> dict[str, tuple[bool, int]]:
        """name -> (loaded, partitions)"""
        found = {f"scale_parts_{n}": (True, PARTITIONS) for n in range(self.partitioned)}
        found.update({f"scale_{n}": (True, 0) for n in range(self.loaded - self.partitioned)})
        found.update({f"scale_cold_{n}": (False, 0) for n in range(self.cold)})
        return found


def _client(uri: str) -> Any:
    from pymilvus import MilvusClient

    logging.getLogger("pymilvus").setLevel(logging.CRITICAL)
    return MilvusClient(uri=uri, timeout=120)


def _create(client: Any, name: str) -> None:
    from pymilvus import DataType

    schema = client.create_schema(auto_id=False, enable_dynamic_field=False)
    schema.add_field("id", DataType.INT64, is_primary=True)
    schema.add_field("vector", DataType.FLOAT_VECTOR, dim=DIM)
    index = client.prepare_index_params()
    # FLAT: nothing to build, so seeding and the reloads measure Milvus's own costs, not an index build.
    index.add_index(field_name="vector", index_type="FLAT", metric_type="L2")
    client.create_collection(name, schema=schema, index_params=index)


def _rows(start: int, count: int, rng: random.Random) -> list[dict]:
    return [{"id": i, "vector": [rng.random() for _ in range(DIM)]} for i in range(start, start + count)]


def grow(uri: str, mix: Mix) -> dict[str, int]:
    """Create what `mix` names and the sandbox lacks, one FlushAll, load the loaded ones; return
    name -> rows of every collection of the mix."""
    client = _client(uri)
    try:
        existing = set(client.list_collections())
        wanted = mix.names()
        rng = random.Random(0)
        added = []
        for name, (_, partitions) in wanted.items():
            if name in existing:
                continue
            _create(client, name)
            for number in range(partitions):
                client.create_partition(name, f"p{number}")
            if partitions:
                per = max(ROWS // partitions, 1)
                for number in range(partitions):
                    client.insert(name, _rows(number * per, per, rng), partition_name=f"p{number}")
            else:
                client.insert(name, _rows(0, ROWS, rng))
            added.append(name)
        _flush_all(uri)
        for name in added:
            if wanted[name][0]:
                client.load_collection(name, _async=True)
            else:  # create_collection with an index loads it
                client.release_collection(name)
        _wait_loaded(client, [name for name in added if wanted[name][0]])
        return {name: (max(ROWS // p, 1) * p if p else ROWS) for name, (_, p) in wanted.items()}
    finally:
        client.close()


def add_big(uri: str, rows: int, *, unflushed: int = 50_000, batch: int = 20_000) -> float:
    """One loaded collection of `rows` rows; the last `unflushed` of them are left unflushed (as a
    live deployment would have). Returns the seconds the seeding took."""
    started = time.monotonic()
    client = _client(uri)
    try:
        if client.has_collection(BIG):
            client.drop_collection(BIG)
        _create(client, BIG)
        rng = random.Random(1)
        flushed = rows - unflushed
        for start in range(0, flushed, batch):
            client.insert(BIG, _rows(start, min(batch, flushed - start), rng))
        _flush_all(uri)
        client.load_collection(BIG, _async=True)
        _wait_loaded(client, [BIG])
        for start in range(flushed, rows, batch):
            client.insert(BIG, _rows(start, min(batch, rows - start), rng))
    finally:
        client.close()
    return time.monotonic() - started


def drop(uri: str, names: list[str]) -> None:
    client = _client(uri)
    try:
        for name in names:
            if client.has_collection(name):
                client.drop_collection(name)
    finally:
        client.close()


def _flush_all(uri: str) -> None:
    from migrator.milvus.client import MilvusAdapter

    with MilvusAdapter.connect(uri, timeout=120) as adapter:
        adapter.flush_all(deadline_s=600)


def _wait_loaded(client: Any, names: list[str], deadline_s: float = 1800) -> None:
    until = time.monotonic() + deadline_s
    pending = list(names)
    while pending:
        pending = [name for name in pending if "Loaded" not in str(client.get_load_state(name).get("state"))]
        if pending and time.monotonic() > until:
            raise RuntimeError(f"{len(pending)} collections not loaded within {deadline_s:.0f} s")
        if pending:
            time.sleep(1.0)
