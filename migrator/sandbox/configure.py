"""Write a sandbox's milvus.yaml (from the wheel's template), its etcd embed config and its playbook.

Every port and path points inside the sandbox dir, so two sandboxes run side by side; the
embedded etcd only leaves 2379/2380 when `etcd.config.path` names an embed config file.
"""

from __future__ import annotations

import io
import re
import string
from importlib import resources
from pathlib import Path

from migrator.errors import BadInput
from migrator.mq import Mq
from migrator.sandbox.binaries import MilvusWheel
from migrator.sandbox.layout import SandboxLayout, SandboxState

# {{ name }}, {{ name: default }}, {{ name(type) }}, {{ name(type): default }}
_PLACEHOLDER = re.compile(r"\{\{\s*(?P<name>\w+)(?:\((?P<type>\w+)\))?\s*(?::\s*(?P<default>[^}]*?))?\s*\}\}")


def _template_values(layout: SandboxLayout, ports: dict[str, int]) -> dict[str, str]:
    data = layout.data_dir
    values = {
        "etcd_port": ports["etcd_client"],
        "etcd_log_path": layout.log_dir / "etcd.log",
        "etcd_data_dir": data / "etcd",
        "local_storage_dir": data / "storage",
        "rocksmq_data_dir": layout.rocksmq_path,
        "rocketmq_data_dir": layout.rocksmq_path,  # 2.2's template spells it so
        "system_log_path": layout.log_dir,
        "proxy_port": ports["proxy"],
        "proxy_internal_port": ports["proxy_internal"],
        "root_coord_port": ports["root_coord"],
        "query_coord_port": ports["query_coord"],
        "query_node_port": ports["query_node"],
        "index_coord_port": ports["index_coord"],
        "index_node_port": ports["index_node"],
        "data_coord_port": ports["data_coord"],
        "data_node_port": ports["data_node"],
    }
    return {key: str(value) for key, value in values.items()}


def render_template(text: str, values: dict[str, str]) -> str:
    def substitute(match: re.Match[str]) -> str:
        name = match.group("name")
        if name in values:
            return values[name]
        if match.group("default") is None:
            raise ValueError(f"template placeholder {name!r} has no value and no default")
        return match.group("default").strip()

    return _PLACEHOLDER.sub(substitute, text)


def milvus_yaml_text(wheel: MilvusWheel, layout: SandboxLayout, state: SandboxState) -> str:
    from ruamel.yaml import YAML

    text = render_template(wheel.template.read_text(encoding="utf-8"), _template_values(layout, state.ports))
    yaml = YAML()
    yaml.preserve_quotes = True
    doc = yaml.load(text)
    doc["etcd"]["config"] = {"path": str(layout.etcd_yaml)}
    if "natsmq" not in doc:  # before 2.3: no natsmq, and no mq.type (the MQ is found, not chosen)
        if state.mq != Mq.ROCKSMQ:
            raise BadInput(f"--mq {state.mq}: Milvus {state.version} has no natsmq (it came in 2.3.0)")
    else:
        doc.setdefault("mq", {})["type"] = state.mq
        server = doc["natsmq"]["server"]
        server["port"] = state.ports["nats"]
        server["storeDir"] = str(layout.nats_store)
        # The default NATS log is shared by every instance on the host; give each its own.
        server.setdefault("monitor", {})["logFile"] = str(layout.nats_log)
    out = io.StringIO()
    yaml.dump(doc, out)
    return out.getvalue()


def etcd_yaml_text(layout: SandboxLayout, ports: dict[str, int]) -> str:
    from migrator.milvus.etcd import embed_config_text

    return embed_config_text(str(layout.data_dir / "etcd"), f"http://127.0.0.1:{ports['etcd_client']}",
                             f"http://127.0.0.1:{ports['etcd_peer']}")


def playbook_text(layout: SandboxLayout, state: SandboxState) -> str:
    template = resources.files("migrator").joinpath("sandbox/playbook.yaml.template").read_text(encoding="utf-8")
    bin_dir = Path(state.bin_dir)
    return string.Template(template).substitute(
        dir=layout.root,
        name=layout.root.name,
        proxy_port=state.ports["proxy"],
        metrics_port=state.ports["metrics"],
        etcd_port=state.ports["etcd_client"],
        config_dir=layout.config_dir,
        binary=bin_dir / "milvus",
        bin_dir=bin_dir,
        run_dir=layout.run_dir,
        pid_file=layout.pid_file,
        stdout_log=layout.stdout_log,
        log_dir=layout.log_dir,
        version=state.version,
    )
