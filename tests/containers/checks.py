"""What the container tests judge by, independently of the tool: their own pymilvus client (rows,
writes), the config file's bytes, and the container's own log (`podman logs`)."""

from __future__ import annotations

import random
import re
import time

from tests.containers.engine import podman

# Two databases, a loaded and an unloaded collection: small, so a round trip stays quick.
SEED = (("default", "loaded_docs", 600, True), ("shop", "unloaded_items", 400, False))
_INIT_MQ = re.compile(r'"try to init mq".*\[mqType=(\w+)\]')


def _client(uri: str, database: str = "default"):
    from pymilvus import MilvusClient

    return MilvusClient(uri, db_name=database, timeout=60)


def seed(uri: str) -> dict[str, int]:
    """Create the seed collections; return `database.collection` -> rows."""
    from pymilvus import DataType

    _client(uri).create_database("shop")
    for database, name, rows, loaded in SEED:
        client = _client(uri, database)
        schema = client.create_schema(auto_id=False)
        schema.add_field("id", DataType.INT64, is_primary=True)
        schema.add_field("vector", DataType.FLOAT_VECTOR, dim=4)
        index = client.prepare_index_params()
        index.add_index(field_name="vector", index_type="FLAT", metric_type="L2")
        client.create_collection(name, schema=schema, index_params=index)
        rng = random.Random(name)
        client.insert(name, [{"id": i, "vector": [rng.random() for _ in range(4)]} for i in range(rows)])
        client.flush(name)
        if loaded:
            client.load_collection(name)
        else:
            client.release_collection(name)
    return counts(uri)


def counts(uri: str) -> dict[str, int]:
    """Rows of each seed collection, counted the way a client would: a Strong count(*) on a loaded
    collection (loading the unloaded one for the count, then releasing it again)."""
    found = {}
    for database, name, _, loaded in SEED:
        client = _client(uri, database)
        if not loaded:
            client.load_collection(name)
        rows = client.query(name, filter="", output_fields=["count(*)"], consistency_level="Strong")[0]["count(*)"]
        if not loaded:
            client.release_collection(name)
        found[f"{database}.{name}"] = rows
    return found


def insert_accepted(uri: str, row_id: int, deadline_s: float = 30.0) -> bool:
    """Does Milvus accept (and then show to a Strong query) an insert into the loaded collection?
    Retried until the deadline: forceDeny is re-read every 5 s."""
    client = _client(uri)
    until = time.monotonic() + deadline_s
    while True:
        try:
            client.insert("loaded_docs", [{"id": row_id, "vector": [0.5] * 4}])
        except Exception:  # noqa: BLE001 - a refused write, as the client sees it
            if time.monotonic() > until:
                return False
            time.sleep(1.0)
            continue
        rows = client.query("loaded_docs", filter=f"id == {row_id}", output_fields=["id"], consistency_level="Strong")
        return rows == [{"id": row_id}]


def insert_refused(uri: str, first_id: int, deadline_s: float = 30.0) -> tuple[str | None, int]:
    """Insert one row a second until Milvus refuses: (the refusal as the client sees it, or None if
    it kept accepting; how many inserts it accepted before that)."""
    client = _client(uri)
    until = time.monotonic() + deadline_s
    accepted = 0
    while time.monotonic() < until:
        try:
            client.insert("loaded_docs", [{"id": first_id + accepted, "vector": [0.5] * 4}])
        except Exception as error:  # noqa: BLE001 - what the client is told
            return str(error), accepted
        accepted += 1
        time.sleep(1.0)
    return None, accepted


def container_log(container: str, since: float) -> str:
    """The container's own log (stdout and stderr) written since `since` (unix seconds)."""
    done = podman("logs", "--since", f"{since:.3f}", container)
    return done.stdout + done.stderr


def mq_types(log: str) -> list[str]:
    """The mqType of each `try to init mq` line, in order."""
    return _INIT_MQ.findall(log)


def mq_runs(log: str) -> list[str]:
    """The mqType of each run of equal `try to init mq` lines: the MQs the log went through, in order."""
    from itertools import groupby

    return [mq for mq, _ in groupby(mq_types(log))]
