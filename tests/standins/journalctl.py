"""Stand-in `journalctl -u UNIT` over the sandbox's stdout log. A cursor is a byte offset.

Supports `-n 1 --show-cursor` (the last line and `-- cursor: OFFSET`) and `-f` with
`--after-cursor OFFSET` or `--since @UNIX`."""

from __future__ import annotations

import sys

import _standin


def main(args: list[str]) -> None:
    def value(flag: str) -> str | None:
        return args[args.index(flag) + 1] if flag in args else None

    if "--show-cursor" in args and "-f" not in args:
        data = _standin.stdout_log().read_bytes() if _standin.stdout_log().exists() else b""
        lines = data.decode("utf-8", "replace").splitlines()
        if lines:
            print(lines[-1])
            print(f"-- cursor: {len(data)}")
        return
    if "-f" in args:
        cursor, since = value("--after-cursor"), value("--since")
        if cursor is not None:
            offset = int(cursor)
        elif since is not None and since.startswith("@"):
            offset = _standin.offset_since(float(since[1:]))
        else:
            _standin.fail(f"stand-in journalctl: -f needs --after-cursor or --since @T: {args}")
        _standin.follow(offset)
        return
    _standin.fail(f"stand-in journalctl: unsupported {args}")


main(sys.argv[1:])
