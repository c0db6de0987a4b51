"""What the tool knows about the Milvus keys it reads and edits: names, types, defaults, order.

Milvus compares keys after `format_key` (lower-case, `/`, `_`, `.` removed), in every source:
files, environment and etcd (pkg/config/config.go, paramtable/base_table.go). So do we.
"""

from __future__ import annotations

from migrator.errors import BadInput

MQ_TYPE = "mq.type"
FORCE_DENY = "quotaAndLimits.limitWriting.forceDeny"
ROCKSMQ_PATH = "rocksmq.path"
# The client port and Milvus's HTTP API: moved and switched off while clients must not reach Milvus
# (docs/decisions/0008-isolate-clients-on-every-restart.md).
PROXY_PORT = "proxy.port"
PROXY_HTTP = "proxy.http.enabled"
# Held off while stored-row counts are compared across the switch: a compaction drops deleted rows
# from them (docs/decisions/0022). Refreshable: Milvus reads it again within 5 s, no restart.
AUTO_COMPACTION = "dataCoord.compaction.enableAutoCompaction"
NATSMQ_SERVER = "natsmq.server"
NATSMQ_SERVER_PREFIX = f"{NATSMQ_SERVER}."  # every natsmq.server.* key starts so

# mq.type values Milvus accepts (paramtable/component_param.go, mq factory).
MQ_TYPES_BEFORE_2_6 = ("default", "pulsar", "kafka", "rocksmq", "natsmq")
MQ_TYPES_FROM_2_6 = ("default", "pulsar", "kafka", "rocksmq", "woodpecker")

# Every natsmq.server.* key of Milvus 2.3-2.5, in the order milvus.yaml lists them, with the
# compiled-in default Milvus uses when no source sets it (docs/milvus.md, "natsmq settings").
NATSMQ_DEFAULTS: dict[str, object] = {
    "natsmq.server.port": 4222,
    "natsmq.server.storeDir": "/var/lib/milvus/nats",
    "natsmq.server.maxFileStore": 17179869184,
    "natsmq.server.maxPayload": 8388608,
    "natsmq.server.maxPending": 67108864,
    "natsmq.server.initializeTimeout": 4000,
    "natsmq.server.monitor.trace": False,
    "natsmq.server.monitor.debug": False,
    "natsmq.server.monitor.logTime": True,
    "natsmq.server.monitor.logFile": "/tmp/milvus/logs/nats.log",
    "natsmq.server.monitor.logSizeLimit": 536870912,
    "natsmq.server.retention.maxAge": 4320,
    "natsmq.server.retention.maxBytes": None,
    "natsmq.server.retention.maxMsgs": None,
}

# Compiled-in defaults of the other keys the migration reads.
OTHER_DEFAULTS: dict[str, object] = {
    MQ_TYPE: "default",
    FORCE_DENY: False,
    "quotaAndLimits.enabled": False,
    "pulsar.maxMessageSize": 5242880,
    "etcd.use.embed": False,
    "etcd.rootPath": "by-dev",
    PROXY_PORT: 19530,
    PROXY_HTTP: True,
    AUTO_COMPACTION: True,
}

DEFAULTS: dict[str, object] = {**OTHER_DEFAULTS, **NATSMQ_DEFAULTS}

_INT_KEYS = {
    PROXY_PORT,
    "natsmq.server.port",
    "natsmq.server.maxFileStore",
    "natsmq.server.maxPayload",
    "natsmq.server.maxPending",
    "natsmq.server.initializeTimeout",
    "natsmq.server.monitor.logSizeLimit",
    "natsmq.server.retention.maxAge",
    "pulsar.maxMessageSize",
}
_NULLABLE_INT_KEYS = {"natsmq.server.retention.maxBytes", "natsmq.server.retention.maxMsgs"}
_BOOL_KEYS = {
    FORCE_DENY,
    PROXY_HTTP,
    AUTO_COMPACTION,
    "quotaAndLimits.enabled",
    "etcd.use.embed",
    "natsmq.server.monitor.trace",
    "natsmq.server.monitor.debug",
    "natsmq.server.monitor.logTime",
}

# The keys `plan_edit` may change: the migration edits nothing else.
EDITABLE_KEYS = (MQ_TYPE, FORCE_DENY, PROXY_PORT, PROXY_HTTP, AUTO_COMPACTION, *NATSMQ_DEFAULTS)

# Where a missing top-level section goes: after the first of these sections that exists,
# so a reader finds natsmq beside the other MQ settings, as in Milvus's own milvus.yaml.
SECTION_NEIGHBOURS = {"natsmq": ("rocksmq", "kafka", "pulsar", "mq"), "mq": ("etcd",)}

# Order of keys inside a section, to insert a missing key after its natural predecessor.
KEY_ORDER = {
    NATSMQ_SERVER: ("port", "storeDir", "maxFileStore", "maxPayload", "maxPending", "initializeTimeout", "monitor",
                    "retention"),
    "natsmq.server.monitor": ("trace", "debug", "logTime", "logFile", "logSizeLimit"),
    "natsmq.server.retention": ("maxAge", "maxBytes", "maxMsgs"),
    "mq": ("type",),
    "proxy": ("port",),
    "proxy.http": ("enabled",),
    "quotaAndLimits.limitWriting": ("forceDeny",),
    "dataCoord.compaction": ("enableAutoCompaction",),
}


def format_key(key: str) -> str:
    """Milvus's key formatter: lower-case, a leading `milvus.` cut, `/`, `_` and `.` removed."""
    formatted = key.lower()
    if formatted.startswith("milvus."):
        formatted = formatted[len("milvus.") :]
    return formatted.replace("/", "").replace("_", "").replace(".", "")


def canonical_key(key: str) -> str | None:
    """The editable key `key` names (any case), or None."""
    wanted = key.lower()
    return next((known for known in EDITABLE_KEYS if known.lower() == wanted), None)


def as_int(value: object) -> int:
    """A config value (typed_value's) as int() takes it; what int() refuses is refused the same way."""
    if isinstance(value, (int, float, str)):
        return int(value)
    raise TypeError(f"{value!r} is not a number")


def as_float(value: object) -> float:
    """A config value (typed_value's) as float() takes it; what float() refuses is refused the same way."""
    if isinstance(value, (int, float, str)):
        return float(value)
    raise TypeError(f"{value!r} is not a number")


def typed_value(key: str, raw: str | None) -> object:
    """Milvus keeps every value as a string; turn the string of a known key into its type.

    Returns the raw string unchanged when it does not parse: the caller decides whether
    that is bad input (see `check_value`).
    """
    if raw is None:
        return None
    text = raw.strip()
    if key in _INT_KEYS or key in _NULLABLE_INT_KEYS:
        if text == "" and key in _NULLABLE_INT_KEYS:
            return None
        try:
            return int(text)
        except ValueError:
            return raw
    if key in _BOOL_KEYS:
        # Go's strconv.ParseBool, which Milvus uses for booleans.
        if text in ("1", "t", "T", "TRUE", "true", "True"):
            return True
        if text in ("0", "f", "F", "FALSE", "false", "False"):
            return False
        return raw
    return raw


def value_error(key: str, value: object,
                mq_types: tuple[str, ...] = (*MQ_TYPES_BEFORE_2_6, "woodpecker")) -> str | None:
    """Why `value` is not a valid value of `key`, or None when it is."""
    if key in _INT_KEYS and not (isinstance(value, int) and not isinstance(value, bool)):
        return f"{key} must be an integer, not {value!r}"
    if key in _NULLABLE_INT_KEYS and value is not None and not (isinstance(value, int) and not isinstance(value, bool)):
        return f"{key} must be an integer or empty, not {value!r}"
    if key in _BOOL_KEYS and not isinstance(value, bool):
        return f"{key} must be true or false, not {value!r}"
    if key == MQ_TYPE and value not in mq_types:
        return f"unknown mq.type {value!r}: Milvus accepts {', '.join(mq_types)}"
    return None


def parse_assignment(assignment: str) -> tuple[str, object]:
    """`KEY=VALUE` from the command line -> (canonical key, typed value); BadInput if wrong."""
    import difflib

    name, sep, text = assignment.partition("=")
    if not sep or not name.strip():
        raise BadInput(f"--set {assignment!r}: expected KEY=VALUE, e.g. natsmq.server.port=4223")
    key = canonical_key(name.strip())
    if key is None:
        nearest = difflib.get_close_matches(name.strip(), EDITABLE_KEYS, n=1, cutoff=0.6)
        hint = f"did you mean {nearest[0]}?" if nearest else f"editable keys: {', '.join(EDITABLE_KEYS)}"
        raise BadInput(f"--set {name.strip()!r}: not a key this tool edits", hint=hint)
    text = text.strip()
    if key == MQ_TYPE:
        value: object = text
    elif key in _INT_KEYS or key in _NULLABLE_INT_KEYS or key in _BOOL_KEYS:
        value = typed_value(key, text)
    else:
        value = text
    problem = value_error(key, value)
    if problem:
        raise BadInput(f"--set {assignment!r}: {problem}")
    return key, value


def render_raw(value: object) -> str:
    """A value as Milvus sees it: the string `cast.ToString` gives for the YAML value."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)

