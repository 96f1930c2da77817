"""`python bot.py` as an admin runs it: one clear line and exit 2 for every mistake."""

from __future__ import annotations

import os
import signal
import sqlite3
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from promptwarden.permissions import invite_url
from promptwarden.storage import LATEST_VERSION
from tests.emulator import APP_ID, BAD_TOKEN, GOOD_TOKEN, ROOT, Emulator, clean_env
from tests.helpers import VALID_TOKEN, assert_one_line_error, bot, start_bot


def test_no_token_prints_the_discord_token_line(tmp_path: Path) -> None:
    result = bot(env={"DATABASE_PATH": str(tmp_path / "pw.db")})
    assert_one_line_error(result, "DISCORD_TOKEN is not set", ".env.example", "Reset Token")
    assert result.stdout == ""
    assert not (tmp_path / "pw.db").exists()  # nothing touched before the config is valid


@pytest.mark.parametrize(
    ("token", "fragment"),
    [
        (f"Bot {VALID_TOKEN}", "starts with 'Bot '"),
        ("MTA1MjM0NTY3 ODkwMTIzNDU2Nw.GaBcDe.abc", "contains spaces"),
        ("1052345678901234567", "looks like an application ID"),
        ("k3yq9s0ZL7GKa1c2b3d4e5f6g7h8i9j0", "does not look like a bot token"),
    ],
)
def test_malformed_tokens_are_explained_without_being_shown(token: str, fragment: str) -> None:
    result = bot("run", env={"DISCORD_TOKEN": token})
    assert_one_line_error(result, "DISCORD_TOKEN", fragment, secret=token)


@pytest.mark.parametrize(
    ("variable", "value", "fragment"),
    [
        ("LOG_LEVEL", "LOUD", "LOG_LEVEL must be one of DEBUG, INFO, WARNING, ERROR"),
        ("DEV_GUILD_ID", "my-server", "DEV_GUILD_ID must be a server ID"),
        ("DEV_GUILD_ID", "12", "DEV_GUILD_ID must be a server ID"),
        ("DISCORD_API_BASE", "discord.com/api/v10", "must be a http:// or https:// URL"),
        ("DISCORD_API_BASE", "http://localhost:8080", "must end with /api/v10"),
        ("DISCORD_API_BASE", "http://localhost:80x/api/v10", "is not a valid URL"),
        ("DISCORD_GATEWAY_URL", "https://gateway.example.net", "must be a ws:// or wss:// URL"),
        ("DISCORD_GATEWAY_URL", "wss://gateway.example.net/?v=10", "must not have a ?query"),
        ("DISCORD_GUILD_READY_TIMEOUT", "soon", "a number of seconds from 0 to 60"),
        ("DISCORD_GUILD_READY_TIMEOUT", "-1", "a number of seconds from 0 to 60"),
    ],
)
def test_invalid_settings_name_the_variable(variable: str, value: str, fragment: str) -> None:
    result = bot("check", env={"DISCORD_TOKEN": VALID_TOKEN, variable: value})
    assert_one_line_error(result, variable, fragment, secret=VALID_TOKEN)
    if "not a valid URL" not in fragment:
        assert repr(value) in result.stderr


def test_a_url_with_a_password_is_refused_without_echoing_it() -> None:
    url = "https://proxy-user:hunter2@proxy.example.net/api/v10"
    result = bot("check", env={"DISCORD_TOKEN": VALID_TOKEN, "DISCORD_API_BASE": url})
    assert_one_line_error(result, "DISCORD_API_BASE must not contain a user name or password")
    assert "hunter2" not in result.stderr


def test_check_shows_the_endpoints_used_instead_of_discord(tmp_path: Path) -> None:
    result = bot(
        "check",
        env={
            "DISCORD_TOKEN": VALID_TOKEN,
            "DATABASE_PATH": str(tmp_path / "pw.db"),
            "DISCORD_API_BASE": "http://ratelimit-proxy:8080/api/v10/",
            "DISCORD_GATEWAY_URL": "wss://gateway.example.net/",
        },
    )
    assert result.returncode == 0, result.stderr
    assert "DISCORD_API_BASE     http://ratelimit-proxy:8080/api/v10 (instead" in result.stdout
    assert "DISCORD_GATEWAY_URL  wss://gateway.example.net/ (instead" in result.stdout


def test_database_path_that_is_a_directory(tmp_path: Path) -> None:
    result = bot("check", env={"DISCORD_TOKEN": VALID_TOKEN, "DATABASE_PATH": str(tmp_path)})
    assert_one_line_error(result, "DATABASE_PATH points to a directory", secret=VALID_TOKEN)


def test_database_path_that_cannot_be_created(tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    result = bot(
        "check",
        env={"DISCORD_TOKEN": VALID_TOKEN, "DATABASE_PATH": str(blocker / "sub" / "pw.db")},
    )
    assert_one_line_error(result, "cannot create the database", "DATABASE_PATH")


def test_newer_database_is_refused_before_contacting_discord(tmp_path: Path) -> None:
    path = tmp_path / "pw.db"
    with sqlite3.connect(path) as conn:
        conn.execute(f"PRAGMA user_version = {LATEST_VERSION + 1}")
    path.chmod(0o600)
    # `run` with no reachable Discord: the database error must come first.
    result = bot("run", env={"DISCORD_TOKEN": VALID_TOKEN, "DATABASE_PATH": str(path)})
    assert_one_line_error(
        result, f"newer PromptWarden (schema {LATEST_VERSION + 1})", secret=VALID_TOKEN
    )


def test_check_validates_and_creates_the_database(tmp_path: Path) -> None:
    path = tmp_path / "data" / "pw.db"
    result = bot(
        "check",
        env={"DISCORD_TOKEN": VALID_TOKEN, "DATABASE_PATH": str(path), "LOG_LEVEL": "debug"},
    )
    assert result.returncode == 0, result.stderr
    assert f"DATABASE_PATH  {path}" in result.stdout
    assert "LOG_LEVEL      DEBUG" in result.stdout
    assert "DEV_GUILD_ID   not set: slash commands sync globally" in result.stdout
    assert f"schema {LATEST_VERSION} (created)" in result.stdout
    assert invite_url(APP_ID) in result.stdout
    assert VALID_TOKEN not in result.stdout + result.stderr
    assert stat.S_IMODE(path.stat().st_mode) == 0o600

    again = bot("check", env={"DISCORD_TOKEN": VALID_TOKEN, "DATABASE_PATH": str(path)})
    assert f"schema {LATEST_VERSION} (up to date)" in again.stdout


def test_dotenv_file_is_read_and_real_environment_wins(tmp_path: Path) -> None:
    env_file = tmp_path / ".env"
    env_file.write_text(
        f"DISCORD_TOKEN={VALID_TOKEN}\nDATABASE_PATH={tmp_path / 'from-dotenv.db'}\n"
        "LOG_LEVEL=WARNING\n"
    )
    result = bot("check", env={"PROMPTWARDEN_ENV_FILE": str(env_file), "LOG_LEVEL": "ERROR"})
    assert result.returncode == 0, result.stderr
    assert "LOG_LEVEL      ERROR" in result.stdout
    assert (tmp_path / "from-dotenv.db").exists()


def test_relative_database_path_is_anchored_at_the_project_root(tmp_path: Path) -> None:
    target = tmp_path / "db" / "pw.db"
    relative = os.path.relpath(target, ROOT)  # "../../tmp/...": relative, but outside the repo
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    result = subprocess.run(
        [sys.executable, str(ROOT / "bot.py"), "check"],
        cwd=elsewhere,  # the current directory must not matter
        env={**clean_env(), "DISCORD_TOKEN": VALID_TOKEN, "DATABASE_PATH": relative},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert target.exists()
    assert not (elsewhere / relative).resolve().exists()


def test_help_lists_the_subcommands() -> None:
    result = bot("--help")
    assert result.returncode == 0
    text = " ".join(result.stdout.split())
    assert "run start the bot (the default)" in text
    assert "check validate the configuration and the database without connecting to Discord" in text


def test_rejected_token_is_one_line_without_the_token(tmp_path: Path) -> None:
    with Emulator() as discord_api:
        process = start_bot(
            discord_api, {"DISCORD_TOKEN": BAD_TOKEN, "DATABASE_PATH": str(tmp_path / "pw.db")}
        )
        _, stderr = process.communicate(timeout=60)
    assert process.returncode == 2
    assert "Traceback" not in stderr and BAD_TOKEN not in stderr
    assert stderr.strip().splitlines()[-1] == (
        "error: Discord rejected DISCORD_TOKEN (reset or mistyped): copy a new one from the "
        "Developer Portal > your application > Bot > Reset Token into .env."
    )


def test_refused_message_content_intent_tells_the_admin_where_to_enable_it(
    tmp_path: Path,
) -> None:
    with Emulator(refuse_privileged_intents=True) as discord_api:
        process = start_bot(
            discord_api, {"DISCORD_TOKEN": GOOD_TOKEN, "DATABASE_PATH": str(tmp_path / "pw.db")}
        )
        _, stderr = process.communicate(timeout=60)
        assert discord_api.gateway.identified.is_set()
    assert process.returncode == 2
    assert "Traceback" not in stderr and GOOD_TOKEN not in stderr
    last = stderr.strip().splitlines()[-1]
    assert last.startswith("error: Discord refused the Message Content intent")
    assert "Developer Portal" in last and "Message Content Intent" in last


def test_sigterm_shuts_down_cleanly_and_closes_the_database(tmp_path: Path) -> None:
    db = tmp_path / "pw.db"
    with Emulator() as discord_api:
        process = start_bot(
            discord_api,
            {"DISCORD_TOKEN": GOOD_TOKEN, "DATABASE_PATH": str(db), "LOG_LEVEL": "DEBUG"},
        )
        assert discord_api.gateway.ready_sent.wait(60), process.communicate(timeout=5)
        assert len(discord_api.command_puts) == 1
        assert "promptwarden" in [c["name"] for c in discord_api.command_puts[0]]
        process.send_signal(signal.SIGTERM)
        _, stderr = process.communicate(timeout=60)
    assert process.returncode == 0, stderr
    assert "received SIGTERM" in stderr and "stopped cleanly" in stderr
    assert GOOD_TOKEN not in stderr  # DEBUG logs include HTTP traffic; still no token
    assert not Path(f"{db}-wal").exists()  # SQLite removes the WAL on a clean close
    with sqlite3.connect(db) as conn:
        stored = conn.execute("SELECT key FROM meta WHERE key LIKE 'command_sync:%'").fetchall()
    assert stored == [(f"command_sync:{APP_ID}:global",)]


def test_unreachable_discord_is_one_line(tmp_path: Path) -> None:
    with Emulator() as discord_api:
        settings = discord_api.env()
    # The emulator is gone: nothing listens on its port any more.
    process = subprocess.run(
        [sys.executable, "bot.py"],
        cwd=ROOT,
        env={
            **clean_env(),
            **settings,
            "DISCORD_TOKEN": GOOD_TOKEN,
            "DATABASE_PATH": str(tmp_path / "pw.db"),
        },
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert process.returncode == 1
    assert "Traceback" not in process.stderr and GOOD_TOKEN not in process.stderr
    last = process.stderr.strip().splitlines()[-1]
    assert last.startswith("error: cannot reach Discord")
