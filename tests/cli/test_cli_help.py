"""Every command has help with an example (including commands added later), and usage errors
exit 2 with one sentence, never a traceback."""

from __future__ import annotations

from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from stelae.cli.main import main
from stelae.tiles.notekeys import Ed25519NoteSigner

VKEY = Ed25519NoteSigner.generate("help.example.test/log").vkey


def test_the_reader_commands_are_registered() -> None:
    assert {"loginfo", "get", "logproof", "search", "monitor"} <= set(main.commands)


@pytest.mark.parametrize("name", sorted(main.commands))
def test_every_command_has_help_with_an_example(name: str) -> None:
    result = CliRunner().invoke(main, [name, "--help"])
    assert result.exit_code == 0, result.output
    assert "Example" in result.output, f"`stelae {name} --help` shows no example"
    command = main.commands[name]
    assert isinstance(command, click.Command) and command.help


def test_the_group_help_lists_every_command() -> None:
    result = CliRunner().invoke(main, ["--help"])
    assert result.exit_code == 0
    for name in main.commands:
        assert name in result.output


@pytest.mark.parametrize(
    "args",
    [
        ["get"],  # neither --log-index nor --uuid
        ["get", "--log-index", "1", "--uuid", "ab" * 32],
        ["get", "--log-index", "-1"],
        ["get", "--uuid", "not-hex"],
        ["search"],
        ["search", "--sha", "ab" * 32, "--email", "a@example.com"],
        ["search", "--sha", "sha256:abc"],
        ["search", "--public-key", "/nonexistent/key.pem"],
        ["logproof"],
        ["logproof", "--first-size", "0"],
        ["logproof", "--first-size", "5", "--last-size", "4"],
        ["monitor", "--interval", "0"],
        ["loginfo", "--vkey", "not-a-vkey"],
        ["loginfo", "--vkey", "@/nonexistent/vkey.txt"],
        ["loginfo", "--log-url", "/nonexistent/log"],
        ["loginfo", "--log-url", "ftp://example.test/log"],
    ],
)
def test_usage_errors_exit_2(tmp_path: Path, args: list[str]) -> None:
    env = {
        "STELAE_LOG_URL": str(tmp_path),
        "STELAE_VKEY": VKEY,
        "STELAE_STATE_DIR": str(tmp_path / "state"),
    }
    result = CliRunner().invoke(main, args, env=env)
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
    assert not (tmp_path / "state").exists()  # nothing was read, nothing remembered


def test_missing_log_url_and_vkey_are_usage_errors(tmp_path: Path) -> None:
    env = {"STELAE_LOG_URL": None, "STELAE_VKEY": None, "STELAE_STATE_DIR": str(tmp_path)}
    result = CliRunner().invoke(main, ["loginfo"], env=env)
    assert result.exit_code == 2 and "--log-url" in result.output
    result = CliRunner().invoke(main, ["loginfo", "--log-url", str(tmp_path)], env=env)
    assert result.exit_code == 2 and "--vkey" in result.output


def test_an_empty_directory_is_a_one_line_failure(tmp_path: Path) -> None:
    env = {"STELAE_STATE_DIR": str(tmp_path / "state")}
    result = CliRunner().invoke(
        main, ["loginfo", "--log-url", str(tmp_path), "--vkey", VKEY], env=env
    )
    assert result.exit_code == 1
    assert result.output.startswith("error:") and len(result.output.strip().splitlines()) == 1
