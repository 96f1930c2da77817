"""The offline screener: one result per input line, in order, in both formats."""

from __future__ import annotations

import argparse
import asyncio
import json
import subprocess
import sys
from pathlib import Path

import pytest

from promptwarden.screening import cli
from promptwarden.storage import open_storage

ROOT = Path(__file__).resolve().parents[3]

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


def test_bot_py_screen_reads_stdin_without_a_token(tmp_path: Path) -> None:
    env = {"PATH": "/usr/bin:/bin", "PROMPTWARDEN_ENV_FILE": str(tmp_path / "absent.env")}
    proc = subprocess.run(
        [sys.executable, str(ROOT / "bot.py"), "screen", "--format", "jsonl", "-"],
        env=env,
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


def _store_rules(db: Path, guild_id: int, rules: dict[str, object]) -> None:
    async def write() -> None:
        async with await open_storage(db) as storage:
            await storage.set_screening_rules(guild_id, rules)

    asyncio.run(write())


def test_guild_rules_apply(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    db = tmp_path / "bot.db"
    _store_rules(db, 7, {"custom_terms": ["banana"], "actions": {"sexual": "warn"}})
    src = tmp_path / "p.txt"
    src.write_text("a banana\na naked man\n", encoding="utf-8")
    code, out, _ = run_main(capsys, "--guild", "7", "--db", str(db), str(src))
    assert code == 0
    assert [json.loads(x)["verdict"] for x in out.splitlines()] == ["block", "warn"]
    # another guild has no stored rules: the shipped defaults apply
    code, out, _ = run_main(capsys, "--guild", "8", "--db", str(db), str(src))
    assert [json.loads(x)["verdict"] for x in out.splitlines()] == ["allow", "block"]


def test_guild_database_comes_from_database_path(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    db = tmp_path / "configured.db"
    _store_rules(db, 7, {"custom_terms": ["banana"]})
    monkeypatch.setenv("DATABASE_PATH", str(db))
    monkeypatch.setenv("PROMPTWARDEN_ENV_FILE", str(tmp_path / "absent.env"))
    src = tmp_path / "p.txt"
    src.write_text("a banana\n", encoding="utf-8")
    code, out, _ = run_main(capsys, "--guild", "7", str(src))
    assert code == 0
    assert json.loads(out)["verdict"] == "block"


def test_missing_database_is_reported_not_created(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    db = tmp_path / "typo.db"
    src = tmp_path / "p.txt"
    src.write_text("a cat\n", encoding="utf-8")
    code, out, err = run_main(capsys, "--guild", "7", "--db", str(db), str(src))
    assert code == 2
    assert out == ""
    assert f"no database at {db}" in err
    assert not db.exists()


def test_bad_stored_rules_are_reported(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    db = tmp_path / "bot.db"
    _store_rules(db, 7, {"actions": {"sexual": "ban"}})
    src = tmp_path / "p.txt"
    src.write_text("a cat\n", encoding="utf-8")
    code, out, err = run_main(capsys, "--guild", "7", "--db", str(db), str(src))
    assert code == 2
    assert out == ""
    assert "unknown action 'ban'" in err
