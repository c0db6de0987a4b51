"""config show|diff|set: the effective MQ settings, and a safe edit of the file that wins."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from migrator.context import Environment
from migrator.errors import BadInput, Refused
from migrator.findings import Finding, errors
from migrator.mq import Mq

if TYPE_CHECKING:
    from migrator.config.layers import EffectiveConfig

# What `config show` lists: the keys the migration reads or writes.
SHOWN_KEYS = (
    "mq.type",
    "rocksmq.path",
    "quotaAndLimits.enabled",
    "quotaAndLimits.limitWriting.forceDeny",
    "pulsar.maxMessageSize",
    "etcd.use.embed",
    "etcd.rootPath",
)


def load(env: Environment, config_dir: Path, env_file: Path | None, version: str | None, etcd: str | None,
         *, check: bool = True) -> Any:
    """The effective config; the env file, when given, is the environment Milvus sees. Without
    `check`, values this version rejects are left for the caller to explain (`effective.check()`)."""
    from migrator.config import EtcdSource, load_layers, read_env_file

    if env_file is not None:
        environ, origin = read_env_file(env_file), str(env_file)
    else:
        environ, origin = dict(env.environ), "environment of this shell"
    return load_layers(config_dir, version, environ, EtcdSource(etcd) if etcd else None, env_origin=origin,
                       check=check)


def show(env: Environment, config_dir: Path, *, env_file: Path | None = None, version: str | None = None,
         etcd: str | None = None) -> dict[str, Any]:
    from migrator.config.keys import NATSMQ_DEFAULTS
    from migrator.config.layers import PIN_NOTE
    from migrator.milvus.etcd import mq_pin_key

    effective = load(env, config_dir, env_file, version, etcd)
    resolved = [effective.get(key) for key in (*SHOWN_KEYS, *NATSMQ_DEFAULTS)]
    pin = effective.mq_pin()
    pinned = effective.pins_mq()
    return {
        "config_dir": str(effective.config_dir),
        "files": [str(layer.path) for layer in effective.layers],
        "mq_type": effective.mq_type(),
        "etcd": effective.etcd_state,
        "settings": [item.to_dict() for item in resolved],
        "sources": [setting.to_dict() for setting in effective.mq_settings()],
        "mq_pin": None if pin is None and not pinned else {
            "key": pin.key if pin else mq_pin_key(effective.get("etcd.rootPath").raw or ""),
            "value": pin.value if pin else None,
            "note": PIN_NOTE if pinned else "present in etcd; Milvus 2.6+ pins its MQ at this key, which 2.3-2.5 "
            "read as an mq.type override only with an external etcd",
        },
    }


def plan_changes(effective: EffectiveConfig, target: str | None, assignments: list[str]) -> tuple[Any, list[Finding]]:
    """The edit for `--to` and every `--set KEY=VALUE`, and the findings for the target MQ."""
    from migrator.config import MQ_TYPE, natsmq_findings, parse_assignment, plan_edit

    changes: dict[str, object] = {MQ_TYPE: target} if target else {}
    changes.update(parse_assignment(assignment) for assignment in assignments)
    if not changes:
        raise BadInput("nothing to change: give --to natsmq|rocksmq and/or --set KEY=VALUE")
    if changes.get(MQ_TYPE) not in (None, "rocksmq", "natsmq"):
        raise Refused(f"mq.type {changes[MQ_TYPE]}: this tool moves Milvus only between rocksmq and natsmq; a file "
                      f"that says {changes[MQ_TYPE]} would restart Milvus on an MQ that holds none of its messages",
                      hint="switch to another MQ with its own procedure (Milvus's docs); for rocksmq <-> natsmq, "

                           "`milvus-migrate plan` then `apply`")
    _refuse_on_pinned_release(effective, changes)
    effective.check()
    edit = plan_edit(effective, changes)
    mq_after = str(edit.changes.get(MQ_TYPE, effective.mq_type()))
    findings = natsmq_findings(effective, edit.changes, mq_after) if mq_after in (Mq.NATSMQ, Mq.ROCKSMQ) else []
    natsmq_keys = {key for key in edit.changes if key.startswith("natsmq.server.")}
    if natsmq_keys and mq_after != Mq.NATSMQ:
        # Settings written for a later switch are checked too (a port -5 is wrong on any MQ); only
        # the keys set, and no port-in-use check: nothing listens on it until the switch.
        later = natsmq_findings(effective, edit.changes, Mq.NATSMQ.value, port_is_free=lambda port: True)
        findings += [finding for finding in later if finding.key in natsmq_keys]
    if mq_after == Mq.NATSMQ:
        findings += _retention_findings(effective, edit.changes)
    return edit, findings


def _refuse_on_pinned_release(effective: EffectiveConfig, changes: dict[str, object]) -> None:
    """Milvus 2.6+ goes by the MQ pinned in etcd and has no natsmq: an mq.type or natsmq.* written into
    a file would change nothing."""
    from migrator.config import MQ_TYPE
    from migrator.migration.preflight import version_findings
    from migrator.milvus.etcd import mq_pin_key

    if not any(key == MQ_TYPE or key.startswith("natsmq.") for key in changes):
        return
    shaped = effective.shaped_like_2_6()
    if shaped is not None and not effective.pins_mq():
        raise Refused(f"{shaped} is a Milvus 2.6 config (a woodpecker section, no natsmq section): 2.6 has no natsmq "
                      "and pins its MQ in etcd, so this edit would at best change nothing and at worst stop Milvus "
                      "from starting", hint="give --version if this config is not 2.6's; 2.6 switches its MQ itself "
                      "(AlterWAL, `milvus-migrate plan` shows the road)")
    if not effective.pins_mq():
        return
    pin = effective.mq_pin()
    refusal = version_findings(str(effective.version), pin=pin.value if pin else None,
                               pin_key=mq_pin_key(effective.get("etcd.rootPath").raw or ""))
    raise Refused(refusal[0].message, hint="`milvus-migrate config show` lists every source of "
                                           "mq.type, the pin included")


def _retention_findings(effective: EffectiveConfig, changes: dict[str, object]) -> list[Finding]:
    """Retention that the streams already in storeDir (the path as the config spells it) would refuse."""
    from migrator.config.keys import NATSMQ_DEFAULTS
    from migrator.migration.preflight import retention_findings
    from migrator.milvus.nats_store import read_store

    planned = {key: changes.get(key, effective.get(key).value) for key in NATSMQ_DEFAULTS}
    store = read_store(Path(str(planned["natsmq.server.storeDir"])))
    return retention_findings({"kind": Mq.NATSMQ.value, "paths": [str(store.path)], "empty": store.empty,
                               "contents": store.to_dict(), "action": "keep"}, planned)


def check_allowed(edit: Any, findings: list[Finding]) -> None:
    """Refused when the edit cannot win or a finding is an error."""
    edit.raise_if_refused()
    problems = errors(findings)
    if problems:
        raise Refused("; ".join(f"{finding.key}: {finding.message}" for finding in problems))


def write_edit(edit: Any, backup_dir: Path | None) -> dict[str, str]:
    from migrator.config import keep_original, write_atomic

    original, digest = keep_original(edit.target, backup_dir or edit.target.resolve().parent / ".milvus-migrate")
    written = write_atomic(edit.target, edit.text)
    return {"file": str(written), "original": str(original), "sha256": digest}


def edit_result(edit: Any, findings: list[Finding], written: dict[str, str] | None) -> dict[str, Any]:
    return {**edit.to_dict(), "findings": [finding.to_dict() for finding in findings], "written": written}


def diff(env: Environment, config_dir: Path, *, target: str, assignments: list[str], env_file: Path | None = None,
         version: str | None = None, etcd: str | None = None) -> tuple[dict[str, Any], Refused | None]:
    """The edit a migration would make; (result, the refusal to raise after showing it, or None)."""
    edit, findings = plan_changes(load(env, config_dir, env_file, version, etcd, check=False), target, assignments)
    try:
        check_allowed(edit, findings)
    except Refused as refusal:
        return edit_result(edit, findings, None), refusal
    return edit_result(edit, findings, None), None


def set_(env: Environment, config_dir: Path, *, target: str | None, assignments: list[str], write: bool,
         backup_dir: Path | None = None, env_file: Path | None = None, version: str | None = None,
         etcd: str | None = None) -> dict[str, Any]:
    """Change mq.type and/or settings in the file that wins; writes only with `write`."""
    from migrator.config import MQ_TYPE

    edit, findings = plan_changes(load(env, config_dir, env_file, version, etcd, check=False), target, assignments)
    check_allowed(edit, findings)
    written = write_edit(edit, backup_dir) if write and edit.changed else None
    result = edit_result(edit, findings, written)
    if MQ_TYPE in edit.changes and edit.changed:
        result["warning"] = SKIPS_THE_MIGRATION
    return result


SKIPS_THE_MIGRATION = (
    "this edit of mq.type skips the whole safe sequence of `milvus-migrate apply`: nothing denies writes, "
    "flushes (FlushAll), stops Milvus, empties the target store, proves the new MQ or verifies the counts; a "
    "Milvus restarted on it may skip or replay messages and lose acknowledged writes. Use `milvus-migrate plan` "
    "and `milvus-migrate apply` unless you do each of those by hand.")
