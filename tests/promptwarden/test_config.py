"""DATABASE_URL, SHARD_COUNT and SHARD_IDS: parsed, checked, and obeyed by `bot.py`."""

from __future__ import annotations

import signal
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from promptwarden.config import ConfigError, format_shard_ids, load_settings
from tests.emulator import GOOD_TOKEN, Emulator
from tests.helpers import (
    POSTGRES_URL,
    VALID_TOKEN,
    assert_one_line_error,
    bot,
    needs_postgres,
    start_bot,
)

SECRET = "s3cret-pass"


def settings(tmp_path: Path, **env: str) -> object:
    return load_settings({"DISCORD_TOKEN": VALID_TOKEN, **env}, root=tmp_path, env_file=Path("-"))


def error(tmp_path: Path, **env: str) -> str:
    with pytest.raises(ConfigError) as raised:
        settings(tmp_path, **env)
    text = str(raised.value)
    assert "\n" not in text
    return text


def test_without_database_url_database_path_means_sqlite(tmp_path: Path) -> None:
    loaded = load_settings({"DISCORD_TOKEN": VALID_TOKEN}, root=tmp_path, env_file=Path("-"))
    assert loaded.database_url is None
    assert loaded.database == tmp_path / "data" / "promptwarden.db"


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("sqlite:///state/pw.db", "state/pw.db"),  # relative to the project folder
        ("sqlite:////var/lib/pw.db", "/var/lib/pw.db"),
    ],
)
def test_sqlite_urls_name_a_file(tmp_path: Path, url: str, expected: str) -> None:
    loaded = load_settings(
        {"DISCORD_TOKEN": VALID_TOKEN, "DATABASE_URL": url, "DATABASE_PATH": "ignored.db"},
        root=tmp_path,
        env_file=Path("-"),
    )
    assert loaded.database_url is None
    assert loaded.database_path == tmp_path / expected


def test_postgres_url_wins_and_is_kept_whole(tmp_path: Path) -> None:
    url = f"postgresql://pw:{SECRET}@db.internal:5433/promptwarden"
    loaded = load_settings(
        {"DISCORD_TOKEN": VALID_TOKEN, "DATABASE_URL": url}, root=tmp_path, env_file=Path("-")
    )
    assert loaded.database == url
    assert SECRET not in repr(loaded)


@pytest.mark.parametrize(
    ("url", "fragment"),
    [
        (
            f"mysql://pw:{SECRET}@db/pw",
            "must start with postgresql:// or sqlite:/// (got mysql://)",
        ),
        ("data/pw.db", "(got no scheme)"),
        ("sqlite://pw.db", "needs three slashes"),
        ("sqlite:///", "names no file"),
        (f"postgresql://pw:{SECRET}@db:notaport/pw", "is not a valid URL"),
        (f"postgresql://pw:{SECRET}@/pw", "names no PostgreSQL host"),
        (f"postgresql://pw:{SECRET}@db:5432", "names no database"),
    ],
)
def test_bad_database_urls_are_explained_without_the_password(
    tmp_path: Path, url: str, fragment: str
) -> None:
    text = error(tmp_path, DATABASE_URL=url)
    assert fragment in text
    assert text.startswith("DATABASE_URL")
    assert SECRET not in text


@pytest.mark.parametrize(
    ("raw", "ids"),
    [("0-3", (0, 1, 2, 3)), ("0,1,2", (0, 1, 2)), ("4-5, 8", (4, 5, 8)), ("7", (7,))],
)
def test_shard_ids_take_ranges_and_lists(tmp_path: Path, raw: str, ids: tuple[int, ...]) -> None:
    loaded = load_settings(
        {"DISCORD_TOKEN": VALID_TOKEN, "SHARD_COUNT": "16", "SHARD_IDS": raw},
        root=tmp_path,
        env_file=Path("-"),
    )
    assert loaded.shard_count == 16 and loaded.shard_ids == ids


@pytest.mark.parametrize(
    ("env", "fragment"),
    [
        ({"SHARD_COUNT": "0"}, "SHARD_COUNT must be a whole number of shards from 1"),
        ({"SHARD_COUNT": "four"}, "(got 'four')"),
        ({"SHARD_IDS": "0-3"}, "SHARD_IDS needs SHARD_COUNT"),
        ({"SHARD_COUNT": "4", "SHARD_IDS": "2-5"}, "SHARD_IDS 4, 5 not below SHARD_COUNT=4"),
        ({"SHARD_COUNT": "4", "SHARD_IDS": "0-2,1"}, "lists shard 1 more than once"),
        ({"SHARD_COUNT": "4", "SHARD_IDS": "3-1"}, "runs backwards: write 1-3"),
        ({"SHARD_COUNT": "4", "SHARD_IDS": "a-b"}, "such as 0-3 or 0,1,2"),
        ({"SHARD_COUNT": "4", "SHARD_IDS": "-1"}, "such as 0-3 or 0,1,2"),
    ],
)
def test_bad_shard_settings_are_one_clear_line(
    tmp_path: Path, env: dict[str, str], fragment: str
) -> None:
    assert fragment in error(tmp_path, **env)


def test_shard_ids_print_the_way_they_are_written() -> None:
    assert format_shard_ids([5, 0, 1, 2, 7, 8]) == "0-2,5,7-8"
    assert format_shard_ids([]) == "none"


def test_check_names_the_backend_and_shards_without_the_password(tmp_path: Path) -> None:
    result = bot(
        "check",
        env={
            "DISCORD_TOKEN": VALID_TOKEN,
            "DATABASE_PATH": str(tmp_path / "pw.db"),
            "SHARD_COUNT": "8",
            "SHARD_IDS": "4-7",
        },
    )
    assert result.returncode == 0, result.stderr
    assert "(SQLite)" in result.stdout
    assert "SHARD_COUNT    8; SHARD_IDS 4-7 here" in result.stdout
    # Part of the shards on SQLite: the other processes cannot share that file's news.
    assert "warning: SHARD_IDS gives this process only part of the shards" in result.stdout


def test_bad_shard_ids_stop_bot_py_with_one_line(tmp_path: Path) -> None:
    result = bot(
        "run",
        env={"DISCORD_TOKEN": VALID_TOKEN, "SHARD_COUNT": "2", "SHARD_IDS": "1,2"},
    )
    assert_one_line_error(result, "SHARD_IDS 2 not below SHARD_COUNT=2", secret=VALID_TOKEN)


@needs_postgres
def test_check_on_postgres_migrates_and_hides_the_password(postgres_url: str) -> None:
    from urllib.parse import urlsplit

    password = urlsplit(POSTGRES_URL).password or ""
    result = bot("check", env={"DISCORD_TOKEN": VALID_TOKEN, "DATABASE_URL": postgres_url})
    assert result.returncode == 0, result.stderr
    assert "(PostgreSQL)" in result.stdout and ":***@" in result.stdout
    assert "(created), PostgreSQL" in result.stdout
    assert password not in result.stdout + result.stderr


def wait_for(condition: Callable[[], bool], timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.05)
    return False


def test_a_process_identifies_only_its_own_shards(tmp_path: Path) -> None:
    with Emulator() as emulator:
        process = start_bot(
            emulator,
            {
                "DISCORD_TOKEN": GOOD_TOKEN,
                "DATABASE_PATH": str(tmp_path / "pw.db"),
                "SHARD_COUNT": "4",
                "SHARD_IDS": "2-3",
            },
        )
        shards = emulator.gateway.identify_shards
        assert wait_for(lambda: len(shards) >= 2, 60), process.communicate(timeout=5)
        process.send_signal(signal.SIGTERM)
        _, stderr = process.communicate(timeout=60)
    assert process.returncode == 0, stderr
    assert sorted(shards) == [[2, 4], [3, 4]]


def test_a_gateway_override_without_shard_count_runs_one_shard(tmp_path: Path) -> None:
    """GET /gateway/bot would point the bot at Discord's own gateway, past the override."""
    with Emulator() as emulator:
        process = start_bot(
            emulator, {"DISCORD_TOKEN": GOOD_TOKEN, "DATABASE_PATH": str(tmp_path / "pw.db")}
        )
        assert emulator.gateway.ready_sent.wait(60), process.communicate(timeout=5)
        process.send_signal(signal.SIGTERM)
        _, stderr = process.communicate(timeout=60)
    assert process.returncode == 0, stderr
    assert emulator.gateway.identify_shards == [[0, 1]]
