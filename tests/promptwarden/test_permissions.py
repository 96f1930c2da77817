"""The permission integer in the README is the one the code asks for."""

from __future__ import annotations

import re
from pathlib import Path

import discord

from promptwarden.permissions import (
    NEEDED_PERMISSIONS,
    OPTIONAL_PERMISSIONS,
    PERMISSIONS_INTEGER,
    PERMISSIONS_WITH_OPTIONAL,
    invite_url,
)

README = Path(__file__).resolve().parents[2] / "README.md"


def test_bits_match_discord_py() -> None:
    for permission in (*NEEDED_PERMISSIONS, *OPTIONAL_PERMISSIONS):
        assert discord.Permissions(**{permission.attr: True}).value == permission.bit
    assert discord.Permissions(PERMISSIONS_INTEGER) == discord.Permissions(
        **{p.attr: True for p in NEEDED_PERMISSIONS}
    )


def test_readme_states_the_exact_integer_and_explains_each_permission() -> None:
    text = README.read_text(encoding="utf-8")
    # The plain invite, and optionally one that also offers the optional permissions.
    found = set(re.findall(r"permissions=(\d+)", text))
    assert str(PERMISSIONS_INTEGER) in found
    assert found <= {str(PERMISSIONS_INTEGER), str(PERMISSIONS_WITH_OPTIONAL)}
    for permission in NEEDED_PERMISSIONS:
        assert f"**{permission.label}**" in text, permission.label


def test_invite_url_asks_for_bot_and_slash_command_scopes() -> None:
    assert invite_url(123) == (
        "https://discord.com/oauth2/authorize?client_id=123"
        f"&scope=bot+applications.commands&permissions={PERMISSIONS_INTEGER}"
    )


def test_the_optional_invite_adds_only_manage_server() -> None:
    plain = discord.Permissions(PERMISSIONS_INTEGER)
    optional = discord.Permissions(PERMISSIONS_WITH_OPTIONAL)
    assert not plain.manage_guild and optional.manage_guild
    assert optional.value & ~discord.Permissions(manage_guild=True).value == plain.value
    assert invite_url(123, optional=True).endswith(f"permissions={PERMISSIONS_WITH_OPTIONAL}")
