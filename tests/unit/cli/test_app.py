"""The CLI shell: version, help on every command, light imports, exit codes."""

from __future__ import annotations

import subprocess
import sys

from migrator import __version__
from migrator.errors import ExitCode
from tests.support.cli import run_cli


def test_version() -> None:
    result = run_cli(["--version"])
    assert result.exit_code == 0
    assert result.stdout.strip() == f"milvus-migrate {__version__}"


def _commands() -> list[list[str]]:
    import typer

    from migrator.cli import app

    root = typer.main.get_command(app)
    paths: list[list[str]] = []

    def walk(command, prefix: list[str]) -> None:
        paths.append(prefix)
        for name, sub in getattr(command, "commands", {}).items():
            walk(sub, [*prefix, name])

    walk(root, [])
    return paths


def test_help_on_every_command() -> None:
    commands = _commands()
    assert ["sandbox", "up"] in commands
    for path in commands:
        result = run_cli([*path, "--help"])
        assert result.exit_code == 0, (path, result.stderr)
        assert "Usage" in result.stdout


def test_help_imports_no_heavy_module() -> None:
    code = (
        "import sys; from migrator.cli import main; "
        "rc = main(['--help']); "
        "heavy = [m for m in ('pymilvus', 'grpc', 'pandas', 'structlog', 'rocksdict', 'nats') if m in sys.modules]; "
        "print(heavy); sys.exit(rc)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip().splitlines()[-1] == "[]"


def test_unknown_option_is_usage_error() -> None:
    result = run_cli(["--bogus"])
    assert result.exit_code == ExitCode.BAD_INPUT
    assert "--bogus" in result.stderr


def test_exit_codes_are_documented_values() -> None:
    assert [int(c) for c in ExitCode] == [0, 1, 2, 3, 4, 130]


def test_help_of_the_operator_commands_has_examples() -> None:
    for command in ("plan", "apply", "rollback", "status"):
        result = run_cli([command, "--help"])
        assert result.exit_code == 0
        examples = result.stdout.split("Examples:", 1)[1]
        # Kept as written (not re-flowed): one command per line.
        assert f"\n    milvus-migrate {command} " in examples, result.stdout


def test_shell_completion_is_on(monkeypatch, capsys) -> None:
    import pytest

    from migrator.cli import main

    # The shell named, not guessed from the process tree (a test run from a detached job has no shell
    # among its ancestors for shellingham to find).
    monkeypatch.setenv("_TYPER_COMPLETE_TEST_DISABLE_SHELL_DETECTION", "1")
    with pytest.raises(SystemExit) as exited:  # typer's completion ends the process itself
        main(["--show-completion", "bash"])
    assert exited.value.code == 0 and "_MILVUS_MIGRATE_COMPLETE=complete_bash" in capsys.readouterr().out
    monkeypatch.setenv("_MILVUS_MIGRATE_COMPLETE", "complete_bash")
    monkeypatch.setenv("COMP_WORDS", "milvus-migrate wri")
    monkeypatch.setenv("COMP_CWORD", "1")
    with pytest.raises(SystemExit) as exited:
        main([])
    assert exited.value.code == 0 and capsys.readouterr().out.split() == ["writes"]
