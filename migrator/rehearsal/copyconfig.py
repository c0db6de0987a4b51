"""The copy's config: production's files with every port and directory of Milvus's own moved to the
copy's, its environment, and the playbook the real `apply` runs on.

Production's config dir is copied whole; the highest file Milvus reads gets every moved key (it
beats every lower file), and a variable of the environment that sets one of those keys is given
the copy's value (the environment beats every file). Keys of services the copy does not run itself
(MinIO, Pulsar, TLS files) are left as they are: the copy only reads them. Nothing is written
into production's config dir.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from migrator.config.edit import edit_text
from migrator.config.keys import format_key, render_raw
from migrator.config.layers import EffectiveConfig
from migrator.config.yamldoc import parse_document
from migrator.errors import Refused
from migrator.mq import Mq
from migrator.playbook import Playbook
from migrator.rehearsal.layout import CopyLayout
from migrator.util.files import MIB, read_bounded, write_bytes_atomic
from migrator.util.ports import free_ports

# Every port a standalone serves: each gets a free one in the copy (a key this version does not
# know is harmless). proxy.http.port only when production sets it: set, it moves HTTP off the
# client port.
PORT_KEYS = ("proxy.port", "proxy.internalPort", "rootCoord.port", "queryCoord.port", "queryNode.port",
             "indexCoord.port", "indexNode.port", "dataCoord.port", "dataNode.port", "streamingNode.port",
             "natsmq.server.port")
PORT_KEYS_WHEN_SET = ("proxy.http.port",)
COPY_FILE_LIMIT = 16 * MIB  # a config dir holds pages of YAML, not data


@dataclass
class CopyConfig:
    """What the copy runs with; the ports and directories it was given."""

    ports: dict[str, int]
    etcd_client_port: int
    etcd_peer_port: int
    metrics_port: int
    changes: dict[str, Any]  # dotted key -> the copy's value
    environ: dict[str, str] = field(default_factory=dict)  # variables the copy's Milvus gets
    etcd_overrides: dict[str, str] = field(default_factory=dict)  # production etcd config key -> copy's value

    @property
    def proxy_port(self) -> int:
        return self.ports["proxy.port"]


def source_path(effective: EffectiveConfig, key: str, cwd: Path) -> Path | None:
    """Where production's Milvus keeps `key`'s directory (relative to its working directory)."""
    raw = (effective.get(key).raw or "").strip()
    if not raw:
        return None
    path = Path(raw)
    return path if path.is_absolute() else cwd / path


def refuse_what_a_copy_cannot_hold(effective: EffectiveConfig) -> None:
    storage = (effective.get("common.storageType").raw or "minio").strip().lower()
    if storage != "local":
        raise Refused(f"common.storageType is {storage}: a rehearsal copies segment files from localStorage.path "
                      "only; a copy of a MinIO/S3 bucket is not built yet",
                      hint="rehearse on a staging copy made by your object store's own tools")
    mq = effective.mq_type()
    if mq != Mq.ROCKSMQ:
        raise Refused(f"Milvus runs on {mq}: a rehearsal copies a RocksMQ store only; a copy of a live NATS store "
                      "is not built yet")
    if (effective.get("metastore.type").raw or "etcd").strip().lower() != "etcd":
        raise Refused("metastore.type is not etcd: a rehearsal copies etcd only")


def plan_copy_config(effective: EffectiveConfig, layout: CopyLayout, environ: Mapping[str, str]) -> CopyConfig:
    """The copy's ports and the keys that move; `environ` is what production's Milvus sees."""
    wanted = list(PORT_KEYS) + [key for key in PORT_KEYS_WHEN_SET if (effective.get(key).raw or "").strip()]
    ports = free_ports(len(wanted) + 3)
    port_of = dict(zip(wanted, ports, strict=False))
    etcd_client, etcd_peer, metrics = ports[len(wanted):]
    changes: dict[str, Any] = dict(port_of)
    changes.update({
        "etcd.endpoints": f"127.0.0.1:{etcd_client}",
        "rocksmq.path": str(layout.rocksmq_path),
        "localStorage.path": str(layout.storage),
        "natsmq.server.storeDir": str(layout.nats_store),
        "natsmq.server.monitor.logFile": str(layout.log_dir / "nats.log"),
    })
    if effective.get("etcd.use.embed").value is True:
        changes.update({"etcd.data.dir": str(layout.etcd_data), "etcd.config.path": str(layout.etcd_embed_config)})
    if os.path.isabs((effective.get("etcd.log.path").raw or "").strip()):
        changes["etcd.log.path"] = str(layout.log_dir / "etcd.log")
    if (effective.get("log.file.rootPath").raw or "").strip():
        changes["log.file.rootPath"] = str(layout.log_dir)
    if (effective.get("queryNode.mmap.mmapDirPath").raw or "").strip():
        changes["queryNode.mmap.mmapDirPath"] = str(layout.mmap_dir)
    config = CopyConfig(port_of, etcd_client, etcd_peer, metrics, changes)
    config.environ = {**environ, "METRICS_PORT": str(metrics), "MILVUS_RUN_DIR": str(layout.run_dir),
                      "MILVUSCONF": str(layout.config_dir) + "/"}
    for key, value in changes.items():
        formatted = format_key(key)
        if formatted in effective.env:
            config.environ[effective.env[formatted].name] = render_raw(value)
        if formatted in effective.etcd:
            config.etcd_overrides[effective.etcd[formatted].key] = render_raw(value)
    return config


def write_copy_config(effective: EffectiveConfig, layout: CopyLayout, config: CopyConfig) -> list[str]:
    """Copy production's config dir into the copy and move the keys; the files written."""
    source = effective.config_dir
    written = []
    for root, _dirs, names in os.walk(source):
        for name in sorted(names):
            path = Path(root, name)
            if path.is_symlink() or not path.is_file():
                continue
            target = layout.config_dir / path.relative_to(source)
            target.parent.mkdir(parents=True, exist_ok=True)
            write_bytes_atomic(target, read_bounded(path, COPY_FILE_LIMIT, what="config file"), mode=0o644)
            written.append(str(target))
    top = layout.config_dir / effective.layers[-1].path.relative_to(source)
    document = parse_document(top, top.read_text(encoding="utf-8"))
    write_bytes_atomic(top, edit_text(document, config.changes).encode("utf-8"), mode=0o644)
    if "etcd.config.path" in config.changes:
        from migrator.milvus.etcd import embed_config_text

        write_bytes_atomic(layout.etcd_embed_config, embed_config_text(
            str(layout.etcd_data), f"http://127.0.0.1:{config.etcd_client_port}",
            f"http://127.0.0.1:{config.etcd_peer_port}").encode(), mode=0o644)
    return written


def copy_playbook(production: Playbook, layout: CopyLayout, config: CopyConfig, *, argv: list[str],
                  version: str | None, root_path: str) -> dict[str, Any]:
    """The playbook of the copy: a process the tool starts itself, on the copy's ports and dirs, with
    production's migration options (its NATS settings moved to the copy's)."""
    scheme = "https" if production.milvus.uri.startswith("https") else "http"
    migration = production.migration
    natsmq = {**migration.natsmq, "port": config.ports["natsmq.server.port"], "storeDir": str(layout.nats_store)}
    stop_s = getattr(production.runtime, "stop_timeout_s", migration.deadlines.stop_s)
    return {
        "version": 1,
        "name": f"rehearsal-of-{production.name}",
        "milvus": {"uri": f"{scheme}://127.0.0.1:{config.proxy_port}", "token_env": production.milvus.token_env,
                   "metrics_url": f"http://127.0.0.1:{config.metrics_port}"},
        "config": {"dir": str(layout.config_dir), "version": version,
                   "etcd": {"endpoint": f"http://127.0.0.1:{config.etcd_client_port}", "root_path": root_path}},
        "environment": {},
        "runtime": {"kind": "process", "argv": argv, "cwd": str(layout.root), "env": config.environ,
                    "pid_file": str(layout.milvus_pid), "stdout_log": str(layout.stdout_log),
                    "stop_timeout_s": stop_s, "start_timeout_s": migration.deadlines.start_s},
        "logs": {"kind": "file", "path": str(layout.stdout_log)},
        "migration": {"state_dir": str(layout.state_dir), "backup_dir": str(layout.backup_dir),
                      "backup": migration.backup, "cleanup": migration.cleanup, "natsmq": natsmq,
                      "deadlines": migration.deadlines.model_dump(),
                      "write_downtime_budget_s": migration.write_downtime_budget_s,
                      "rollback_budget_s": migration.rollback_budget_s},
    }


def write_playbook(layout: CopyLayout, playbook: dict[str, Any]) -> Path:
    import json

    # JSON is YAML; 0600: the environment may hold credentials of the services Milvus reads.
    write_bytes_atomic(layout.playbook, json.dumps(playbook, indent=2).encode("utf-8"))
    return layout.playbook
