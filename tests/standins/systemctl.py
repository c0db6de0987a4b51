"""Stand-in `systemctl` for one unit backed by the sandbox Milvus.

The unit file is STANDIN_HOME/units/<unit> (only Environment= and EnvironmentFile= are read,
and passed to Milvus as systemd would). Supports: is-active, show -p ... [--value], start,
stop [--no-block], kill --signal=SIGKILL.
"""

from __future__ import annotations

import shlex
import sys
from pathlib import Path

import _standin


def unit_file(unit: str) -> Path:
    path = _standin.HOME / "units" / unit
    if not path.exists():
        _standin.fail(f"Unit {unit} could not be found.", 5)
    return path


def directives(unit: str) -> tuple[list[str], list[str]]:
    environment, files = [], []
    for line in unit_file(unit).read_text().splitlines():
        key, _, value = line.strip().partition("=")
        if key == "Environment":
            environment += shlex.split(value)
        elif key == "EnvironmentFile":
            files.append(value.strip())
    return environment, files


def unit_env(unit: str) -> dict[str, str]:
    from migrator.config.envrules import read_env_file

    environment, files = directives(unit)
    env = dict(item.partition("=")[::2] for item in environment)
    for name in files:
        path = Path(name.lstrip("-"))
        if name.startswith("-") and not path.exists():
            continue
        env.update(read_env_file(path))
    return env


def state(unit: str) -> str:
    unit_file(unit)
    if _standin.running_pid() is not None:
        return "active"
    return "failed" if (_standin.HOME / "units" / f"{unit}.started").exists() else "inactive"


def main(args: list[str]) -> None:
    verb, rest = args[0], args[1:]
    unit = next(a for a in rest if not a.startswith("-") and "=" not in a and a not in ("Environment", "EnvironmentFiles", "MainPID"))
    marker = _standin.HOME / "units" / f"{unit}.started"
    if verb == "is-active":
        current = state(unit)
        print(current)
        sys.exit(0 if current == "active" else 3)
    if verb == "show":
        properties = [rest[i + 1] for i, a in enumerate(rest) if a == "-p"]
        value_only = "--value" in rest
        environment, files = directives(unit)
        values = {
            "MainPID": [str(_standin.running_pid() or 0)],
            "Environment": [" ".join(shlex.quote(item) for item in environment)],
            "EnvironmentFiles": [f"{f.lstrip('-')} (ignore_errors={'yes' if f.startswith('-') else 'no'})" for f in files],
        }
        for name in properties:
            for value in values[name]:
                print(value if value_only else f"{name}={value}")
        return
    if verb == "start":
        unit_file(unit)
        marker.touch()
        _standin.start(unit_env(unit))
        return
    if verb == "stop":
        unit_file(unit)
        marker.unlink(missing_ok=True)
        if "--no-block" in rest:  # the job is queued: SIGTERM now, the unit goes inactive when it exits
            _standin.terminate()
            return
        _standin.stop(30.0)
        return
    if verb == "kill":
        _standin.stop(0.1)
        return
    _standin.fail(f"stand-in systemctl: unsupported {args}")


main(sys.argv[1:])
