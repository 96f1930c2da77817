"""Running `python bot.py` the way an admin does, and checking its one-line errors."""

from __future__ import annotations

import subprocess
import sys

from tests.emulator import ROOT, clean_env

VALID_TOKEN = "MTA1MjM0NTY3ODkwMTIzNDU2Nw.GaBcDe.cli-test-token_0123456789abcdefghij"


def bot(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "bot.py", *args],
        cwd=ROOT,
        env={**clean_env(), **(env or {})},
        capture_output=True,
        text=True,
        timeout=60,
    )


def assert_one_line_error(
    result: subprocess.CompletedProcess[str], *fragments: str, secret: str = ""
) -> None:
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: ")
    for fragment in fragments:
        assert fragment in lines[0]
    if secret:
        assert secret not in result.stdout + result.stderr
