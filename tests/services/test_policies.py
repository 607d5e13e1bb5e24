"""Policy announcements against the sandbox: pinned in every target room with the banner, a new
version replacing the old pin, a second sync changing nothing, unpins reverted and reported,
missing permissions and disabled pinning reported per room while the other rooms still work."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from bot.config import Credentials
from bot.moderation.policy import PolicyError, Targets
from bot.rest import RestClient
from bot.sandbox import Sandbox
from bot.services.executor import Executor
from bot.services.policies import PolicyKeeper, PolicyNotice
from bot.store import Store

CONDUCT = """---
rooms: [general, random]
banner: "Be kind. Report abuse with /report."
delete_old: true
---
# Code of conduct

Be kind to each other.
"""


def write_policy(folder: Path, name: str, content: str) -> Path:
    folder.mkdir(exist_ok=True)
    path = folder / f"{name}.md"
    path.write_text(content)
    return path


def room(sb: Sandbox, name: str) -> dict[str, Any]:
    found = sb.workspace.room_by_id_or_name(name=name)
    assert found is not None
    return found


def pinned_in(sb: Sandbox, name: str) -> list[dict[str, Any]]:
    rid = room(sb, name)["_id"]
    return [m for m in sb.workspace.messages.values() if m["rid"] == rid and m.get("pinned")]


def writes(sb: Sandbox) -> list[str]:
    """Requests that can change the workspace (every REST write is a POST)."""
    return [path for method, path in sb.faults.requests if method == "POST"]


class Harness:
    def __init__(self, sb: Sandbox, tmp: Path) -> None:
        bot = next(u for u in sb.seed_info()["users"] if u["username"] == "rcmod.bot")
        self.sb = sb
        self.bot_id = str(bot["id"])
        self.folder = tmp / "policies"
        self.folder.mkdir()
        self.store = Store.open(tmp / "data" / "rcmod.sqlite3")
        self.rest = RestClient(
            sb.url, Credentials.model_validate({"user_id": bot["id"], "token": bot["token"]})
        )
        self.notices: list[PolicyNotice] = []
        self.executor = Executor(rest=self.rest, audit=self.store.audit, retention_days=90)

        async def notify(notice: PolicyNotice) -> None:
            self.notices.append(notice)

        self.keeper = PolicyKeeper(
            audit=self.store.audit,
            policies=self.store.policies,
            rest=self.rest,
            executor=self.executor,
            policy_dir=self.folder,
            bot_user_id=lambda: self.bot_id,
            notify=notify,
        )

    async def close(self) -> None:
        await self.rest.close()
        self.store.close()


@pytest.fixture
async def h(sandbox: Sandbox, tmp_path: Path) -> AsyncIterator[Harness]:
    harness = Harness(sandbox, tmp_path)
    try:
        yield harness
    finally:
        await harness.close()


async def test_a_policy_is_pinned_in_every_target_room_with_its_banner(h: Harness) -> None:
    write_policy(h.folder, "conduct", CONDUCT)
    report = await h.keeper.sync()
    assert report.ok, report.lines()
    for name in ("general", "random"):
        [pinned] = pinned_in(h.sb, name)
        assert pinned["msg"].startswith("# Code of conduct") and pinned["u"]["_id"] == h.bot_id
        assert h.store.policies.is_policy_message(pinned["_id"])  # the message's own id, not the pin notice's
        assert room(h.sb, name)["announcement"] == "Be kind. Report abuse with /report."
    assert pinned_in(h.sb, "staff") == [] and not room(h.sb, "staff").get("announcement")
    [v1] = h.keeper.list_policies()
    assert (v1.name, v1.version, v1.source) == ("conduct", 1, "file")
    actions = [r.action for r in h.store.audit.audit_records()]
    assert actions.count("policy.pinned") == 2


async def test_a_second_sync_sends_no_write(h: Harness) -> None:
    write_policy(h.folder, "conduct", CONDUCT)
    await h.keeper.sync()
    before = len(writes(h.sb))
    report = await h.keeper.sync()
    assert report.done == [] and report.ok
    assert writes(h.sb)[before:] == []


async def test_a_new_version_replaces_the_old_pin(h: Harness) -> None:
    write_policy(h.folder, "conduct", CONDUCT)
    await h.keeper.sync()
    [old] = pinned_in(h.sb, "general")
    write_policy(h.folder, "conduct", CONDUCT.replace("Be kind to each other.", "Be kind. Always."))
    before = len(writes(h.sb))
    report = await h.keeper.sync()
    assert report.ok, report.lines()
    [new] = pinned_in(h.sb, "general")
    assert new["_id"] != old["_id"] and "Always" in new["msg"]
    assert old["_id"] not in h.sb.workspace.messages  # delete_old: true
    assert not h.store.policies.is_policy_message(old["_id"]) and h.store.policies.is_policy_message(
        new["_id"]
    )
    # The banner did not change, so it was not set again (that would post a system message).
    assert not any(p.endswith("rooms.saveRoomSettings") for p in writes(h.sb)[before:])
    assert h.keeper.show("conduct").version == 2
    assert "policy.unpinned" in [r.action for r in h.store.audit.audit_records()]


async def test_an_unpin_is_reverted_and_reported_with_who_did_it(h: Harness) -> None:
    write_policy(h.folder, "conduct", CONDUCT)
    await h.keeper.sync()
    [msg] = pinned_in(h.sb, "general")
    h.sb.unpin_as("mod1", msg["_id"])  # mod1 moderates #general: allowed to unpin
    assert pinned_in(h.sb, "general") == []
    report = await h.keeper.sync()
    assert [p["_id"] for p in pinned_in(h.sb, "general")] == [msg["_id"]]
    [notice] = h.notices
    assert notice.actor_username == "mod1" and "mod1" in notice.text and "general" in notice.text
    assert "@" not in notice.text
    assert any("again" in line for line in report.done)


async def test_a_banner_edit_is_restored(h: Harness) -> None:
    write_policy(h.folder, "conduct", CONDUCT)
    await h.keeper.sync()
    h.sb.set_announcement_as("admin", "random", "party tonight")
    await h.keeper.sync()
    assert room(h.sb, "random")["announcement"] == "Be kind. Report abuse with /report."


async def test_missing_permissions_are_reported_per_room(h: Harness) -> None:
    ws = h.sb.workspace
    ws.set_permission_roles("pin-message", ["owner", "moderator", "admin"])  # bot role removed
    ws.set_permission_roles("edit-room", ["owner", "moderator", "admin"])
    write_policy(h.folder, "conduct", CONDUCT)
    report = await h.keeper.sync()
    problems = [str(p) for p in report.problems]
    assert any(p.startswith("#general") and "pin-message" in p for p in problems), problems
    assert any(p.startswith("#random") and "pin-message" in p for p in problems), problems
    assert any(p.startswith("#general") and "edit-room" in p for p in problems), problems
    # Posted but not pinned: the permission comes back and the next sync pins the same message.
    ws.set_permission_roles("pin-message", ["owner", "moderator", "admin", "bot"])
    ws.set_permission_roles("edit-room", ["owner", "moderator", "admin", "bot"])
    report = await h.keeper.sync()
    assert report.ok, report.lines()
    assert len(pinned_in(h.sb, "general")) == 1
    bot_posts = [m for m in ws.messages.values() if m["u"]["_id"] == h.bot_id and m.get("t") is None]
    assert len(bot_posts) == 2  # one per room, never reposted


async def test_pinning_disabled_is_reported_and_the_banner_still_set(h: Harness) -> None:
    h.sb.workspace.set_setting("Message_AllowPinning", False)
    write_policy(h.folder, "conduct", CONDUCT)
    report = await h.keeper.sync()
    assert {p.room for p in report.problems} == {"general", "random"}
    assert all("Message_AllowPinning" in p.reason for p in report.problems)
    assert pinned_in(h.sb, "general") == []
    assert room(h.sb, "general")["announcement"] == "Be kind. Report abuse with /report."


async def test_bad_input_is_reported_and_other_rooms_still_reconciled(h: Harness) -> None:
    write_policy(h.folder, "empty", "---\nrooms: [general]\n---\n\n")
    write_policy(h.folder, "ops", "---\npattern: 'ops-*'\n---\nOps rules\n")
    write_policy(h.folder, "long", f"---\nrooms: [general]\nbanner: {'x' * 300}\n---\nText\n")
    write_policy(h.folder, "conduct", CONDUCT.replace("[general, random]", "[general, nowhere]"))
    report = await h.keeper.sync()
    problems = [str(p) for p in report.problems]
    assert any("empty.md: the policy has no text" in p for p in problems), problems
    assert any("long.md: banner is 300 characters" in p for p in problems), problems
    assert any("'ops-*' matches no room" in p for p in problems), problems
    assert any("#nowhere: no such room" in p for p in problems), problems
    assert len(pinned_in(h.sb, "general")) == 1  # conduct still pinned where it can be


async def test_a_room_the_bot_cannot_post_in_does_not_stop_the_others(h: Harness) -> None:
    h.sb.workspace.save_room_settings(h.sb._user("admin").id, room(h.sb, "random")["_id"], {"readOnly": True})
    h.sb.workspace.set_permission_roles("post-readonly", ["admin", "owner", "moderator"])
    write_policy(h.folder, "conduct", CONDUCT)
    report = await h.keeper.sync()
    assert [(p.room, p.reason) for p in report.problems] == [("random", "the bot cannot post in this room")]
    assert len(pinned_in(h.sb, "general")) == 1


async def test_a_deleted_file_unpins_and_clears_the_banner(h: Harness) -> None:
    path = write_policy(h.folder, "conduct", CONDUCT)
    await h.keeper.sync()
    [msg] = pinned_in(h.sb, "general")
    path.unlink()
    report = await h.keeper.sync()
    assert report.ok, report.lines()
    assert pinned_in(h.sb, "general") == [] and msg["_id"] in h.sb.workspace.messages  # kept, unpinned
    assert room(h.sb, "general")["announcement"] == ""
    assert h.keeper.list_policies() == []
    assert [v.removed for v in h.keeper.history("conduct")] == [False, True]


async def test_command_set_policies_are_versioned_and_files_win(h: Harness) -> None:
    v1 = h.keeper.set_policy("rules", "Be nice", actor="mod1", targets=Targets(rooms=("random",)))
    v2 = h.keeper.set_policy("rules", "Be nicer", actor="mod1")
    assert (v1.version, v2.version, v2.spec.targets.rooms) == (1, 2, ("random",))
    await h.keeper.sync()
    [msg] = pinned_in(h.sb, "random")
    assert msg["msg"] == "Be nicer"
    write_policy(h.folder, "rules", "---\nrooms: [random]\n---\nFrom the file\n")
    with pytest.raises(PolicyError, match="defined by the file"):
        h.keeper.set_policy("rules", "again", actor="mod1")
    report = await h.keeper.sync()
    assert any("the file wins" in str(p) for p in report.problems)
    assert [m["msg"] for m in pinned_in(h.sb, "random")] == ["From the file"]
    with pytest.raises(PolicyError, match="no text"):
        h.keeper.set_policy("other", "  ", actor="mod1", targets=Targets(rooms=("random",)))


async def test_remove_unpins_and_dry_run_changes_nothing(h: Harness) -> None:
    h.keeper.set_policy("rules", "Be nice", actor="mod1", targets=Targets(rooms=("general",)), banner="Hi")
    plan = await h.keeper.sync(dry_run=True)
    assert [line.split(":")[0] for line in plan.lines()] == ["would #general", "would #general"]
    assert writes(h.sb) == []
    await h.keeper.sync()
    assert len(pinned_in(h.sb, "general")) == 1
    h.keeper.remove("rules", actor="mod1")
    await h.keeper.sync()
    assert pinned_in(h.sb, "general") == [] and h.keeper.list_policies() == []


async def test_chat_changes_are_audited_and_a_new_policy_may_wait_for_its_rooms(h: Harness) -> None:
    woken = h.keeper._wake
    v1 = h.keeper.set_policy("rules", "Be nice", actor="mod1", actor_id="U-mod1")
    assert v1.spec.targets == Targets() and woken.is_set()  # saved; pinned nowhere yet
    assert (await h.keeper.sync()).ok and pinned_in(h.sb, "random") == []
    h.keeper.set_rooms("rules", Targets(rooms=("random",)), actor="mod1", actor_id="U-mod1")
    await h.keeper.sync()
    assert [m["msg"] for m in pinned_in(h.sb, "random")] == ["Be nice"]
    h.keeper.remove("rules", actor="mod1", actor_id="U-mod1")
    await h.keeper.sync()
    assert pinned_in(h.sb, "random") == []
    # Set again after its removal: a fresh policy, not silently back in its old rooms.
    assert h.keeper.set_policy("rules", "Back", actor="mod1").spec.targets == Targets()
    write_policy(h.folder, "conduct", CONDUCT)
    with pytest.raises(PolicyError, match="defined by the file"):
        h.keeper.remove("conduct", actor="mod2", actor_id="U-mod2")
    with pytest.raises(PolicyError, match="lower-case"):
        h.keeper.set_policy("../conduct", "x", actor="mod1")  # the name is checked before any path
    changes = [r for r in h.store.audit.audit_records() if r.action == "policy.changed"]
    assert [(r.actor, r.reason["change"], r.outcome) for r in changes] == [
        ("U-mod1", "set", "ok"),
        ("U-mod1", "rooms", "ok"),
        ("U-mod1", "remove", "ok"),
        ("mod1", "set", "ok"),
        ("U-mod2", "remove", "refused: a policy file wins"),
    ]
    assert [r.reason.get("version") for r in changes] == [1, 2, 3, 4, None]
    assert changes[1].reason["targets"]["rooms"] == ["random"] and changes[1].targets == {"policy": "rules"}
    assert not any("Be nice" in str(r.reason) for r in changes)  # the text stays in the store


# -- rcmod policy sync ---------------------------------------------------------------------------


def policy_env(sb: Sandbox, tmp: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    bot = next(u for u in sb.seed_info()["users"] if u["username"] == "rcmod.bot")
    folder = tmp / "policies"
    folder.mkdir(exist_ok=True)
    for key, value in {
        "RCMOD_SERVER_URL": sb.url,
        "RCMOD_USER_ID": bot["id"],
        "RCMOD_AUTH_TOKEN": bot["token"],
        "RCMOD_DATA_DIR": str(tmp / "data"),
        "RCMOD_POLICY_DIR": str(folder),
    }.items():
        monkeypatch.setenv(key, value)
    return folder


async def test_cli_dry_run_prints_the_plan_and_changes_nothing(
    sandbox: Sandbox, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from bot import cli

    write_policy(policy_env(sandbox, tmp_path, monkeypatch), "conduct", CONDUCT)
    code = await asyncio.to_thread(cli.main, ["policy", "sync", "--dry-run"])
    out = capsys.readouterr().out.splitlines()
    assert code == 0
    assert "would #general: post conduct v1 and pin it" in out
    assert "would #random: set the announcement banner" in out
    assert writes(sandbox) == [] and pinned_in(sandbox, "general") == []
    store = Store.open(tmp_path / "data" / "rcmod.sqlite3")
    try:  # nothing was acted on, so nothing audited or kept either
        assert store.policies.live_policy_messages() == [] and store.evidence.all_evidence_rows() == []
        assert not [r for r in store.audit.audit_records() if r.action.startswith("policy.")]
    finally:
        store.close()
    code = await asyncio.to_thread(cli.main, ["policy", "sync"])
    assert code == 0 and len(pinned_in(sandbox, "general")) == 1
    capsys.readouterr()
    code = await asyncio.to_thread(cli.main, ["policy", "sync", "--dry-run"])
    assert (code, capsys.readouterr().out) == (0, "nothing to do\n")


async def test_cli_exit_codes_for_problems_and_bad_config(
    sandbox: Sandbox, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from bot import cli

    write_policy(policy_env(sandbox, tmp_path, monkeypatch), "conduct", "---\nrooms: [general]\n---\n\n")
    code = await asyncio.to_thread(cli.main, ["policy", "sync"])
    assert code == 1
    assert "problem: policies (conduct): conduct.md: the policy has no text" in capsys.readouterr().out
    monkeypatch.delenv("RCMOD_AUTH_TOKEN")
    assert await asyncio.to_thread(cli.main, ["policy", "sync"]) == 2
    assert "configuration error" in capsys.readouterr().err
    with pytest.raises(SystemExit) as usage:  # no subcommand: argparse exits with status 2
        cli.main(["policy"])
    assert usage.value.code == 2


async def test_a_deleted_policy_message_is_posted_again(h: Harness) -> None:
    write_policy(h.folder, "conduct", CONDUCT)
    await h.keeper.sync()
    [gone] = pinned_in(h.sb, "general")
    h.sb.delete_as("admin", gone["_id"])
    report = await h.keeper.sync()
    assert report.ok, report.lines()
    [again] = pinned_in(h.sb, "general")
    assert again["_id"] != gone["_id"] and again["msg"] == gone["msg"]
    assert not h.store.policies.is_policy_message(gone["_id"]) and h.store.policies.is_policy_message(
        again["_id"]
    )
    assert (await h.keeper.sync()).done == []


async def test_policy_versions_survive_a_restart_of_the_store(h: Harness, tmp_path: Path) -> None:
    h.keeper.set_policy("rules", "Be nice", actor="mod1", targets=Targets(all_public=True))
    h.keeper.set_policy("rules", "Be nicer", actor="mod2", banner="Nice!")
    h.store.close()
    h.store = Store.open(tmp_path / "data" / "rcmod.sqlite3")
    history = h.store.policies.policy_history("rules")
    assert [(v.version, v.spec.text, v.created_by, v.source) for v in history] == [
        (1, "Be nice", "mod1", "command"),
        (2, "Be nicer", "mod2", "command"),
    ]
    assert history[1].spec.targets == Targets(all_public=True) and history[1].spec.banner == "Nice!"
