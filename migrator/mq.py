"""The message queues this tool migrates between, named as Milvus's `mq.type` spells them.

A StrEnum: each member is its string, so plans, journals, JSON and YAML hold the same values as
before, and comparisons with what a config file says need no conversion.
"""

from __future__ import annotations

from migrator.util.strenum import StrEnum


class Mq(StrEnum):
    ROCKSMQ = "rocksmq"
    NATSMQ = "natsmq"


MIGRATABLE = tuple(Mq)  # what a plan may name as its source or its target
