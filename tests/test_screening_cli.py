"""The offline screener: one result per input line, in order, in both formats."""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

import pytest

from promptwarden.screening import cli

LINES = [
    "a red fox in the snow",
    "a naked woman on the beach",
    "",
    "mail me at jane@example.com",
    "a knight, gore everywhere --no blood",
]


def run_main(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    parser = argparse.ArgumentParser()
    cli.configure_parser(parser)
    code = cli.main(parser.parse_args(list(argv)))
    out, err = capsys.readouterr()
    return code, out, err


def test_jsonl_one_result_per_line_in_order(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    src = tmp_path / "prompts.txt"
    src.write_text("\n".join(LINES) + "\n", encoding="utf-8")
    code, out, _ = run_main(capsys, "--format", "jsonl", str(src))
    assert code == 0
    rows = [json.loads(line) for line in out.splitlines()]
    assert [r["prompt"] for r in rows] == LINES
    assert [r["verdict"] for r in rows] == ["allow", "block", "allow", "remind", "block"]
    assert rows[1]["categories"] == ["sexual"]
    assert rows[1]["severity"] == "high"
    assert rows[1]["matches"][0]["text"] == "naked"
    assert all({"prompt", "verdict", "severity", "categories", "matches"} <= set(r) for r in rows)


def test_text_format_brackets_when_not_a_terminal(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    src = tmp_path / "prompts.txt"
    src.write_text("a red fox\na nude statue by a naked man\n", encoding="utf-8")
    code, out, _ = run_main(capsys, "--format", "text", str(src))
    assert code == 0
    assert out.splitlines() == [
        "ALLOW: a red fox",
        "BLOCK (sexual; high): a [nude] statue by a [naked] man",
    ]
    assert "\x1b[" not in out


def test_stdin_subprocess() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "promptwarden.screening.cli", "--format", "jsonl", "-"],
        input="a cat\nkkk rally\n",
        capture_output=True,
        text=True,
        check=True,
    )
    rows = [json.loads(line) for line in proc.stdout.splitlines()]
    assert [(r["prompt"], r["verdict"]) for r in rows] == [
        ("a cat", "allow"),
        ("kkk rally", "block"),
    ]
    assert rows[1]["categories"] == ["hate"]


def test_missing_file_is_a_clear_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run_main(capsys, str(tmp_path / "nope.txt"))
    assert code == 2
    assert out == ""
    assert "no such file" in err


def test_guild_rules_apply(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # the storage lookup is the CLI's one seam to the bot's database (wired at merge)
    stored = {"custom_terms": ["banana"], "actions": {"sexual": "warn"}}
    monkeypatch.setattr(cli, "load_guild_rules", lambda db, guild: stored if guild == 7 else None)
    src = tmp_path / "p.txt"
    src.write_text("a banana\na naked man\n", encoding="utf-8")
    code, out, _ = run_main(capsys, "--guild", "7", str(src))
    assert code == 0
    assert [json.loads(x)["verdict"] for x in out.splitlines()] == ["block", "warn"]
    code, out, _ = run_main(capsys, "--guild", "8", str(src))
    assert [json.loads(x)["verdict"] for x in out.splitlines()] == ["allow", "block"]


def test_bad_stored_rules_are_reported(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(cli, "load_guild_rules", lambda db, guild: {"actions": {"sexual": "ban"}})
    src = tmp_path / "p.txt"
    src.write_text("a cat\n", encoding="utf-8")
    code, out, err = run_main(capsys, "--guild", "7", str(src))
    assert code == 2
    assert out == ""
    assert "unknown action 'ban'" in err
