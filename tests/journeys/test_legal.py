"""Journey: an operator answers a preservation request, a production request and an erasure
request about one member, with the audit commands on the command line."""

from __future__ import annotations

import json
from pathlib import Path

from tests.journeys.conftest import World, base_env, poll, rcmod


async def test_legal_hold_export_verify_offline_erase(world: World, tmp_path: Path) -> None:
    env = world.bot_env()
    bot = await world.bot(env)
    alice, mod1 = await world.persons("alice", "mod1")
    alice_id = world.seed.user("alice")["id"]
    general = world.seed.room_id("general")

    # Something is kept about alice: a block-list message, removed with its evidence.
    blocked = await alice.send(general, "what a zorgslur thing to say")
    assert await poll(lambda: any(f"?msg={blocked}" in str(a.get("msg")) for a in mod1.alerts()), 15)

    # Preservation: hold what is kept about her.
    hold = await rcmod(["audit", "hold", "--user", alice_id], env)
    assert hold.code == 0, hold

    # Production: a signed export, checked offline with the published key.
    out = tmp_path / "production"
    export = await rcmod(["audit", "export", "--user", alice_id, "--out", str(out)], env)
    assert export.code == 0, export
    assert {"audit.jsonl", "evidence.jsonl", "manifest.json", "manifest.sig", "public_key.pem"} <= {
        p.name for p in out.iterdir()
    }
    evidence = [json.loads(line) for line in (out / "evidence.jsonl").read_text().splitlines()]
    assert any(blocked in json.dumps(e) for e in evidence), evidence
    published = Path(env["RCMOD_DATA_DIR"]) / "audit-signing-key.pub.pem"
    assert published.exists()
    key = tmp_path / "operator-key.pem"
    key.write_bytes(published.read_bytes())  # what the operator handed over, out of band
    # The recipient has no config, no server and no store: only the folder and the key.
    offline = await rcmod(["audit", "verify-export", str(out), "--public-key", str(key)], base_env())
    assert offline.code == 0, offline

    # A changed byte in the export is caught.
    tampered = tmp_path / "tampered"
    tampered.mkdir()
    for f in out.iterdir():
        (tampered / f.name).write_bytes(f.read_bytes())
    original = (out / "evidence.jsonl").read_text()
    (tampered / "evidence.jsonl").write_text(original.replace("zorgslur", "zorgslux"))
    bad = await rcmod(["audit", "verify-export", str(tampered), "--public-key", str(key)], base_env())
    assert bad.code == 1, bad

    # Erasure: what the hold covers is kept (and said so); the log still verifies.
    erase = await rcmod(["audit", "erase", "--user", alice_id], env)
    assert erase.code == 0, erase
    verify = await rcmod(["audit", "verify"], env)
    assert verify.code == 0, verify
    # Once the hold is released, erasure takes the content; the chain keeps verifying.
    release = await rcmod(["audit", "release", "--user", alice_id], env)
    assert release.code == 0, release
    erase = await rcmod(["audit", "erase", "--user", alice_id], env)
    assert erase.code == 0, erase
    verify = await rcmod(["audit", "verify"], env)
    assert verify.code == 0, verify
    after = tmp_path / "after-erasure"
    export = await rcmod(["audit", "export", "--user", alice_id, "--out", str(after)], env)
    assert export.code == 0, export
    assert "zorgslur" not in (after / "evidence.jsonl").read_text()  # a tombstone now
    checked = await rcmod(["audit", "verify-export", str(after), "--public-key", str(key)], base_env())
    assert checked.code == 0, checked
    assert await bot.stop() == 0


async def test_legal_hold_by_username(world: World) -> None:
    """A request names a member as people know them: `@alice` holds the same as her id."""
    env = world.bot_env()
    bot = await world.bot(env)
    hold = await rcmod(["audit", "hold", "--user", "@alice"], env)
    assert hold.code == 0, hold
    again = await rcmod(["audit", "hold", "--user", world.seed.user("alice")["id"]], env)
    assert again.code == 0, again
    # One hold, however it was named: releasing by id ends it, and a second release finds none.
    assert (await rcmod(["audit", "release", "--user", world.seed.user("alice")["id"]], env)).code == 0
    assert (await rcmod(["audit", "release", "--user", "@alice"], env)).code == 1
    assert await bot.stop() == 0
