"""Deterministic seed data: two databases, collections of several kinds, some loaded, one not.

The same seed always gives the same rows, so tests can assert exact counts before and after a
migration.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from migrator.context import Environment

DIM = 8


@dataclass(frozen=True)
class SeedCollection:
    database: str
    name: str
    rows: int
    loaded: bool
    deletes: int = 0  # rows deleted after insert (ids 0..deletes-1)
    partitions: tuple[str, ...] = ()

    @property
    def expected_rows(self) -> int:
        return self.rows - self.deletes


SEED = (
    SeedCollection("default", "articles", rows=3000, loaded=True),
    SeedCollection("default", "events_with_deletes", rows=2000, loaded=True, deletes=250),
    SeedCollection("default", "archive_unloaded", rows=1500, loaded=False),
    SeedCollection("shop", "products_partitioned", rows=2400, loaded=True, partitions=("p2024", "p2025")),
    SeedCollection("shop", "reviews", rows=1800, loaded=True),
)


def _rows(collection: SeedCollection, rng: random.Random, start: int, count: int) -> list[dict]:
    return [
        {
            "id": i,
            "vector": [rng.random() for _ in range(DIM)],
            "title": f"{collection.name}-{i}",
            "price": round(rng.uniform(1, 500), 2),
        }
        for i in range(start, start + count)
    ]


def seed(env: Environment, uri: str, token: str | None = None) -> dict[str, tuple[int, bool]]:
    """Create the seed collections (dropping earlier ones of the same name); return key -> (rows, loaded)."""
    from pymilvus import DataType

    from migrator.milvus.client import MilvusAdapter

    with MilvusAdapter.connect(uri, token=token, timeout=60.0) as milvus:
        if "shop" not in milvus.databases():
            milvus.client().create_database("shop")
        result: dict[str, tuple[int, bool]] = {}
        for spec in SEED:
            rng = random.Random(f"{spec.database}.{spec.name}")
            client = milvus.client(spec.database)
            if client.has_collection(spec.name):
                client.drop_collection(spec.name)
            schema = client.create_schema(auto_id=False, enable_dynamic_field=False)
            schema.add_field("id", DataType.INT64, is_primary=True)
            schema.add_field("vector", DataType.FLOAT_VECTOR, dim=DIM)
            schema.add_field("title", DataType.VARCHAR, max_length=128)
            schema.add_field("price", DataType.DOUBLE)
            index = client.prepare_index_params()
            index.add_index(field_name="vector", index_type="IVF_FLAT", metric_type="L2", params={"nlist": 16})
            client.create_collection(spec.name, schema=schema, index_params=index)
            for partition in spec.partitions:
                client.create_partition(spec.name, partition)
            targets = spec.partitions or ("_default",)
            per_target = spec.rows // len(targets)
            for number, partition in enumerate(targets):
                for offset in range(0, per_target, 1000):
                    batch = _rows(spec, rng, number * per_target + offset, min(1000, per_target - offset))
                    client.insert(spec.name, batch, partition_name=partition)
            if spec.deletes:
                # By primary keys: 2.3.0 deletes only by `pk in [...]`.
                client.delete(spec.name, ids=list(range(spec.deletes)))
        # One FlushAll seals every segment at once; a flush per collection costs seconds each.
        milvus.flush_all(deadline_s=120.0)
        for spec in SEED:
            client = milvus.client(spec.database)
            if spec.loaded:
                client.load_collection(spec.name)
            else:
                client.release_collection(spec.name)
            result[f"{spec.database}.{spec.name}"] = (spec.expected_rows, spec.loaded)
            env.log.info("sandbox.seeded", collection=f"{spec.database}.{spec.name}", rows=spec.expected_rows,
                         loaded=spec.loaded)
        return result
