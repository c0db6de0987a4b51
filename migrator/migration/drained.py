"""Is a stopped MQ's store drained: does it hold any insert or delete that no segment has?

After FlushAll on the source every channel checkpoint is at or past the FlushAll's timestamp, and
the gate kept clients out since before it. Still, a write the proxy took just before the gate
closed can reach the MQ with a later timestamp than the FlushAll's; Milvus acknowledged it, and
no segment holds it. The store on disk says: every message on a DML channel whose timestamp is
above its vchannel's checkpoint, read once Milvus is stopped (nothing writes any more), is
such a write. Switching the MQ then would lose it, so the switch is refused while one is there.

RocksMQ: the messages database, read-only, from each topic's lowest checkpoint on (message keys
`<topic>/<msgID>`, the checkpoint's msgID is the RocksMQ id). NATS: the stream's message blocks,
from the lowest checkpoint sequence on. Collections that no longer exist are not looked at.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from migrator.milvus.etcd import ChannelCheckpoint
from migrator.milvus.protowire import WireError, message_head
from migrator.mq import Mq

_VCHANNEL_COLLECTION = re.compile(r"_(?P<collection>\d+)v\d+$")
NATS_ACCOUNT = "$G"


class StoreUnreadable(Exception):
    """The store cannot be read to the end: the switch cannot be proven safe."""


@dataclass(frozen=True)
class Unflushed:
    vchannel: str
    messages: int
    newest_timestamp: int

    def describe(self) -> str:
        return f"{self.vchannel}: {self.messages} insert/delete messages newer than its checkpoint"


def collection_of(vchannel: str) -> int | None:
    match = _VCHANNEL_COLLECTION.search(vchannel)
    return int(match["collection"]) if match else None


def unflushed(mq: Mq, store_paths: tuple[Path, ...], checkpoints: Iterable[ChannelCheckpoint],
              collection_ids: Iterable[int]) -> list[Unflushed]:
    """Every vchannel of a live collection whose insert or delete messages in the stopped store
    are newer than its checkpoint; empty when the store is drained. StoreUnreadable when it
    cannot be read to the end."""
    live = set(collection_ids)
    by_vchannel = {cp.vchannel: cp for cp in checkpoints if collection_of(cp.vchannel) in live}
    lowest: dict[str, ChannelCheckpoint] = {}
    for checkpoint in by_vchannel.values():
        if checkpoint.pchannel not in lowest or checkpoint.msg_id < lowest[checkpoint.pchannel].msg_id:
            lowest[checkpoint.pchannel] = checkpoint
    counts: Counter[str] = Counter()
    newest: dict[str, int] = {}
    for payload in _payloads_after(mq, store_paths, lowest):
        try:
            head = message_head(payload)
        except WireError as error:
            raise StoreUnreadable(f"a message in the {mq} store is not a Milvus message ({error})") from None
        if not head.carries_rows or head.vchannel is None or collection_of(head.vchannel) not in live:
            continue
        recorded = by_vchannel.get(head.vchannel)
        if recorded is None or head.timestamp > recorded.timestamp:
            counts[head.vchannel] += 1
            newest[head.vchannel] = max(newest.get(head.vchannel, 0), head.timestamp)
    return [Unflushed(vchannel, count, newest[vchannel]) for vchannel, count in sorted(counts.items())]


def _payloads_after(mq: Mq, store_paths: tuple[Path, ...], lowest: dict[str, ChannelCheckpoint]) -> Iterator[bytes]:
    if mq == Mq.ROCKSMQ:
        yield from _rocksmq_payloads(store_paths[0], lowest)
    else:
        yield from _nats_payloads(store_paths[0], lowest)


def _rocksmq_payloads(data_dir: Path, lowest: dict[str, ChannelCheckpoint]) -> Iterator[bytes]:
    from migrator.errors import BadInput
    from migrator.rocksmq.reader import open_read_only, prefixed

    if not data_dir.exists():
        return
    try:
        with open_read_only(data_dir) as db:
            for pchannel, checkpoint in sorted(lowest.items()):
                prefix = f"{pchannel}/".encode()
                start = prefix + str(checkpoint.msg_id).encode()
                for key, value in prefixed(db, prefix, start):
                    if int(key[len(prefix):] or b"0") > checkpoint.msg_id:
                        yield value
    except BadInput as error:
        raise StoreUnreadable(error.message) from None


def _nats_payloads(store_dir: Path, lowest: dict[str, ChannelCheckpoint]) -> Iterator[bytes]:
    from migrator.errors import BadInput
    from migrator.milvus.nats_store import NatsStoreUnreadable, stream_messages

    streams = store_dir / "jetstream" / NATS_ACCOUNT / "streams"
    for pchannel, checkpoint in sorted(lowest.items()):
        stream = streams / pchannel
        if not stream.is_dir():
            continue
        try:
            for message in stream_messages(stream, after_sequence=checkpoint.msg_id):
                yield message.payload
        except (NatsStoreUnreadable, BadInput) as error:
            raise StoreUnreadable(str(getattr(error, "message", error))) from None
