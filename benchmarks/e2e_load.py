"""The members of bench_e2e: DDP connections posting with ``sendMessage``, as the web client does.

Run by bench_e2e only: python -m benchmarks.e2e_load CONFIG.json
Open loop: message k of the run is due at start + k / rate and is sent then by connection
k mod C, whether or not earlier posts have been answered, so a slow server or bot shows up as
latency rather than as a lower offered rate. With rate 0 each connection posts its share back to
back, waiting for each answer (closed loop: as fast as the members can post).
Texts are deterministic (seeded); ``match_share`` of them carry one of the terms.
Prints ``P ok rejected`` every second and, at the end, ``F {json}``: the accepted message ids
(each with 1 when it carries a term), the rejected count and how late the sends were.
"""

from __future__ import annotations

import asyncio
import json
import random
import sys
import time
from pathlib import Path
from typing import Any

import aiohttp

WORDS = (  # noqa: SIM905 (a paragraph reads better than 80 quoted words)
    "the a to and of in is it you that for on with this was are be have at not but what all "
    "we can just so about do one out like up if know how time when new get think good more see "
    "now meeting release build test deploy review docs issue branch merge server client login "
    "today tomorrow yesterday please thanks sure maybe later lunch coffee team project plan "
    "design bug fix patch ticket update check call week weekend morning afternoon question"
).split()


def text_for(rng: random.Random, k: int, term: str | None) -> str:
    words = [rng.choice(WORDS) for _ in range(rng.randint(6, 16))]
    if term is not None:
        words.insert(rng.randrange(len(words) + 1), term)
    # The sequence number keeps every text distinct: repeated content is a protection's business.
    # (Not as "#k": the server would look that up as a channel mention.)
    return f"{' '.join(words)} n{k}"


class Conn:
    def __init__(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        self.ws = ws
        self.waiting: dict[str, tuple[asyncio.Future[Any], bool | None]] = {}

    async def read(self, stats: dict[str, Any]) -> None:
        async for msg in self.ws:
            if msg.type != aiohttp.WSMsgType.TEXT:
                break
            frame = json.loads(msg.data)
            kind = frame.get("msg")
            if kind == "ping":
                await self.ws.send_str('{"msg":"pong"}')
            elif kind == "result" and frame.get("id") in self.waiting:
                fut, term = self.waiting.pop(frame["id"])
                result = frame.get("result")
                if term is None:  # not a post (the login)
                    fut.set_result("error" not in frame)
                elif isinstance(result, dict) and result.get("_id"):
                    stats["accepted"].append([result["_id"], int(term)])
                    fut.set_result(True)
                else:
                    stats["rejected"] += 1
                    error = str((frame.get("error") or {}).get("error", "no result"))
                    stats["errors"][error] = stats["errors"].get(error, 0) + 1
                    fut.set_result(False)
        for fut, _ in self.waiting.values():
            if not fut.done():
                fut.set_result(False)

    async def call(
        self, method: str, mid: str, params: list[Any], term: bool | None = None
    ) -> asyncio.Future[Any]:
        """Send the call; the answer is the future's (open loop: the caller need not wait for it)."""
        fut: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self.waiting[mid] = (fut, term)
        await self.ws.send_str(json.dumps({"msg": "method", "method": method, "id": mid, "params": params}))
        return fut


async def open_conn(http: aiohttp.ClientSession, url: str, token: str, stats: dict[str, Any]) -> Conn:
    ws = await http.ws_connect(url.replace("http", "ws", 1) + "/websocket", max_msg_size=0)
    await ws.send_str('{"msg":"connect","version":"1","support":["1"]}')
    while True:
        frame = json.loads((await ws.receive()).data)
        if frame.get("msg") == "connected":
            break
    conn = Conn(ws)
    asyncio.get_running_loop().create_task(conn.read(stats))
    ok = await (await conn.call("login", "login", [{"resume": token}]))
    if not ok:
        raise SystemExit("login failed")
    return conn


async def main(cfg: dict[str, Any], terms: list[str]) -> None:
    stats: dict[str, Any] = {"accepted": [], "rejected": 0, "errors": {}}
    posters: list[dict[str, Any]] = cfg["conns"]  # one per connection: token and the rooms to post in
    total, rate, share = cfg["total"], cfg["rate"], cfg["match_share"]
    rng = random.Random(cfg["seed"])
    # Decided up front, so the texts and which carry a term do not depend on timing.
    plan = []
    for k in range(total):
        term = rng.choice(terms) if terms and rng.random() < share else None
        plan.append((k, term, rng.randrange(1 << 30)))
    lags: list[float] = []
    connector = aiohttp.TCPConnector(limit=0)
    async with aiohttp.ClientSession(connector=connector) as http:
        conns = []
        for i in range(0, len(posters), 50):  # 50 at a time: a burst of logins is not the test
            conns += await asyncio.gather(
                *(open_conn(http, cfg["url"], p["token"], stats) for p in posters[i : i + 50])
            )
        print(f"C {len(conns)}", flush=True)
        start = time.monotonic() + 0.5

        async def post(c: int) -> None:
            conn, rooms = conns[c], posters[c]["rooms"]
            futures = []
            for n, (k, term, text_seed) in enumerate(plan[c :: len(conns)]):
                if rate:
                    due = start + k / rate
                    delay = due - time.monotonic()
                    if delay > 0:
                        await asyncio.sleep(delay)
                    lags.append(time.monotonic() - due)
                text = text_for(random.Random(text_seed), k, term)
                params = [{"rid": rooms[n % len(rooms)], "msg": text}]
                fut = await conn.call("sendMessage", f"s{k}", params, term is not None)
                if rate:
                    futures.append(fut)
                else:
                    await fut
            await asyncio.gather(*futures)

        async def progress() -> None:
            while True:
                await asyncio.sleep(1.0)
                print(f"P {len(stats['accepted'])} {stats['rejected']}", flush=True)

        ticker = asyncio.create_task(progress())
        try:
            await asyncio.wait_for(asyncio.gather(*(post(c) for c in range(len(conns)))), cfg["timeout"])
        except TimeoutError:
            stats["errors"]["no answer in time"] = total - len(stats["accepted"]) - stats["rejected"]
        ticker.cancel()
        for conn in conns:
            await conn.ws.close()
    lags.sort()
    stats["lag_ms"] = {
        "p50": lags[len(lags) // 2] * 1000 if lags else 0.0,
        "p99": lags[int(len(lags) * 0.99)] * 1000 if lags else 0.0,
        "max": lags[-1] * 1000 if lags else 0.0,
    }
    print("F " + json.dumps(stats), flush=True)


if __name__ == "__main__":
    config = json.loads(Path(sys.argv[1]).read_text())
    listed = Path(config["terms_file"]).read_text().split("\n") if config["terms_file"] else []
    asyncio.run(main(config, [t for t in listed if t]))
