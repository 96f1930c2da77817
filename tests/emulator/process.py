"""`python bot.py` as a real process, pointed at an emulator through its settings.

Output goes to files, not pipes: a busy bot logs enough to fill a pipe buffer and would
block on it if nobody read it.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Mapping
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def clean_env() -> dict[str, str]:
    """No inherited DISCORD_* or DATABASE_* and no .env: only what a test passes counts."""
    return {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "PROMPTWARDEN_ENV_FILE": os.devnull,
        "PYTHONUNBUFFERED": "1",
    }


class BotProcess:
    def __init__(
        self,
        env: Mapping[str, str],
        log_dir: Path,
        *args: str,
        script: Path = ROOT / "bot.py",
        name: str = "bot",
    ) -> None:
        log_dir.mkdir(parents=True, exist_ok=True)
        self.stdout_path = log_dir / f"{name}.stdout"
        self.stderr_path = log_dir / f"{name}.stderr"
        with self.stdout_path.open("ab") as out, self.stderr_path.open("ab") as err:
            self.popen = subprocess.Popen(
                [sys.executable, str(script), *args],
                cwd=ROOT,
                env={**clean_env(), **env},
                stdout=out,
                stderr=err,
            )

    @property
    def pid(self) -> int:
        return self.popen.pid

    def stderr(self) -> str:
        return self.stderr_path.read_text(errors="replace")

    def alive(self) -> bool:
        return self.popen.poll() is None

    def wait_for_log(self, fragment: str, *, timeout: float = 30, count: int = 1) -> None:
        """Wait until stderr holds `fragment` `count` times; fail early if the bot exits."""
        deadline = time.monotonic() + timeout
        while self.stderr().count(fragment) < count:
            if not self.alive():
                raise AssertionError(
                    f"bot exited ({self.popen.returncode}):\n{self.stderr()[-3000:]}"
                )
            if time.monotonic() > deadline:
                raise AssertionError(f"no {fragment!r} in the bot's log:\n{self.stderr()[-3000:]}")
            time.sleep(0.05)

    def rss_kb(self) -> int:
        """Resident memory now, from /proc (Linux)."""
        return self._status_kb("VmRSS:")

    def peak_rss_kb(self) -> int:
        """The most resident memory the process has had (its high-water mark)."""
        return self._status_kb("VmHWM:")

    def _status_kb(self, field: str) -> int:
        for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
            if line.startswith(field):
                return int(line.split()[1])
        raise RuntimeError(f"no {field} line")

    def kill(self) -> None:
        """SIGKILL: no shutdown code runs, as when the machine loses power."""
        self.popen.send_signal(signal.SIGKILL)
        self.popen.wait(30)

    def stop(self, timeout: float = 30) -> int:
        if self.alive():
            self.popen.send_signal(signal.SIGTERM)
            try:
                self.popen.wait(timeout)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait(10)
        return self.popen.returncode

    def __enter__(self) -> BotProcess:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
