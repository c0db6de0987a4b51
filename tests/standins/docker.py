"""Stand-in `docker` (and `docker compose -f FILE`) for one container backed by the sandbox Milvus.

Containers are STANDIN_HOME/containers/<name>.json: {"env": {...}}; a compose service's
container is named after the service. Supports: inspect, start, stop -t N, logs -f --since T,
compose ps -a -q / stop -t N / up -d / logs -f --no-log-prefix --since T.
"""

from __future__ import annotations

import json
import sys

import _standin


def container(name: str) -> dict:
    path = _standin.HOME / "containers" / f"{name}.json"
    if not path.exists():
        _standin.fail(f"Error response from daemon: No such container: {name}")
    return _standin.load_json(path)


def inspect(name: str) -> None:
    env = container(name)["env"]
    pid = _standin.running_pid()
    started = (_standin.HOME / "containers" / f"{name}.started").exists()
    status = "running" if pid else "exited"
    record = {"Name": f"/{name}",
              "State": {"Status": status, "Running": pid is not None, "Pid": pid or 0,
                        "ExitCode": 0 if pid or not started else 1},
              "Config": {"Env": [f"{k}={v}" for k, v in env.items()]}}
    print(json.dumps([record]))


def start(name: str) -> None:
    env = container(name)["env"]
    (_standin.HOME / "containers" / f"{name}.started").touch()
    if _standin.running_pid() is None:
        _standin.start(env)


def stop(name: str, seconds: float) -> None:
    container(name)
    (_standin.HOME / "containers" / f"{name}.started").unlink(missing_ok=True)
    _standin.stop(seconds)


def logs(name: str, since: str) -> None:
    container(name)
    _standin.follow(_standin.offset_since(float(since)), until_exit=True)


def main(args: list[str]) -> None:
    def value(flag: str) -> str:
        return args[args.index(flag) + 1]

    if args[0] == "compose":
        args = args[args.index("-f") + 2 :]
        verb, service = args[0], args[-1]
        if verb == "ps":
            if "-q" in args and "-a" in args:
                container(service)
                print(service)
                return
        elif verb == "stop":
            return stop(service, float(value("-t")))
        elif verb == "up" and "-d" in args:
            return start(service)
        elif verb == "logs" and "-f" in args and "--no-log-prefix" in args:
            return logs(service, value("--since"))
        _standin.fail(f"stand-in docker compose: unsupported {args}")
    verb, name = args[0], args[-1]
    if verb == "inspect":
        return inspect(name)
    if verb == "start":
        return start(name)
    if verb == "stop":
        return stop(name, float(value("-t")))
    if verb == "logs" and "-f" in args:
        return logs(name, value("--since"))
    _standin.fail(f"stand-in docker: unsupported {args}")


main(sys.argv[1:])
