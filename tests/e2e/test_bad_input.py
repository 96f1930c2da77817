"""Hostile and malformed messages through real sockets to the real bot: it keeps serving.

Each message goes over the emulated gateway as Discord would send it, to the watched
channel (screened) and an unwatched one; then a moderator runs `/promptwarden status`
and must get the answer, and the bot's log must hold no traceback.
"""

from __future__ import annotations

from collections.abc import Callable

from tests.emulator import MIDJOURNEY_BOT_ID, BotProcess, Post
from tests.helpers import DISCORD_LIMIT as LIMIT
from tests.helpers import ZALGO, every_category
from tests.helpers import EmulatedServer as Server


def hostile_posts(server: Server) -> list[Post]:
    emu = server.emulator
    mj = emu.user(MIDJOURNEY_BOT_ID)
    member = server.members[0]
    crowd = server.members + [emu.add_member(f"crowd{i}") for i in range(90)]
    requester = f"<@{member.id}>"
    texts = [
        "castle " * (LIMIT // 7),
        "x" * LIMIT,
        ZALGO * (LIMIT // len(ZALGO)),
        "\u202enude\u202c \u2067blood\u2069 \u202dleft\u202c",
        "a\x00b\x00" + "\x00" * 100,
        every_category() * 20,
        "\ufeff\u200b\u200d" * 300,
        "{" * 1000 + "}" * 1000,
        ("{a,b,c,d,e,f,g,h} " * 200)[:LIMIT],
        "a::-" * 1000,
        "--no " * 800,
        "/imagine prompt:",
        "/imagine prompt: " + "\u2014" * 3000,
    ]
    mj_lines = [
        f"**unclosed prompt - {requester} (fast)",
        "**** - <@> (fast)",
        f"** - <@{'9' * 30}> (Waiting to start)",
        f"**{'**' * 1000}** - {requester} (fast)",
        f"**a cat** - {requester} " + "(fast) " * 500,
        f"Making variations for image #99999999999 with prompt **x** - {requester}",
        "- Upscaled (Max) by (relaxed)",
        f"**{'{a,{b,{c,d}}}' * 200}** - {requester} (turbo)",
        "",
    ]
    posts = [Post(server.watched, member, t[:LIMIT]) for t in texts]
    posts += [Post(server.other, member, t[:LIMIT]) for t in texts[:3]]
    posts += [Post(server.watched, mj, t[:LIMIT], mentions=[member]) for t in mj_lines]
    error_embed = {"title": "Banned prompt detected", "description": "x" * 4096, "color": 0xFF0000}
    posts.append(Post(server.watched, mj, "", embeds=[error_embed]))
    image = {
        "id": "1",
        "filename": "grid.png",
        "size": 1024,
        "url": "https://cdn.example/grid.png",
        "proxy_url": "https://media.example/grid.png",
        "width": 1024,
        "height": 1024,
        "content_type": "image/png",
    }
    posts.append(Post(server.watched, mj, "", attachments=[image], mentions=[member]))
    posts.append(Post(server.watched, member, "", attachments=[image]))
    mentions = " ".join(f"<@{u.id}>" for u in crowd)
    posts.append(Post(server.watched, member, mentions, mentions=crowd))
    posts.append(Post(server.watched, mj, f"**{mentions}** - {requester} (fast)", mentions=crowd))
    return posts


def test_hostile_messages_do_not_stop_the_bot(
    server: Server, start_bot: Callable[..., BotProcess]
) -> None:
    emu = server.emulator
    bot = start_bot()
    posts = hostile_posts(server)
    ids = emu.post_many(posts)
    # Edits carry the same hostile content again, as MESSAGE_UPDATE.
    for post, message_id in list(zip(posts, ids, strict=True))[:5]:
        emu.edit(post.channel, message_id, post.content[::-1])

    interaction = emu.invoke(server.watched, server.moderator, "promptwarden", "status")
    callback = "POST /interactions/{interaction_id}/{token}/callback"
    emu.wait_until(
        lambda: any(c.param("interaction_id") == interaction for c in emu.calls(callback)),
        what="the answer to /promptwarden status after the hostile messages",
    )
    answer = next(c for c in emu.calls(callback) if c.param("interaction_id") == interaction)
    assert answer.ok
    status = answer.body["data"]["content"]
    assert f"Mod-log channel: <#{server.modlog.id}>" in status
    assert f"- <#{server.watched.id}>" in status
    # and screening still works: a plain violation after all that is removed
    violation = emu.post(server.watched, server.members[1], "hentai porn, after the storm")
    emu.wait_until(
        lambda: any(
            c.ok and c.param("message_id") == violation
            for c in emu.calls("DELETE /channels/{channel_id}/messages/{message_id}")
        ),
        what="the violation after the hostile messages to be deleted",
    )
    assert bot.alive()
    assert "Traceback" not in bot.stderr(), bot.stderr()[-4000:]
