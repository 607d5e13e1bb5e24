"""A local simulated Rocket.Chat workspace (REST + DDP) for tests and the demo.

No Rocket.Chat server can run on the development machines, so the bot is tested against this
one: a single aiohttp app serving ``/api/info``, ``/api/v1/<route>`` and DDP at ``/websocket``
over an in-memory, seeded :class:`Workspace`. It speaks the real wire formats and is as strict
as the real server (permissions, room membership, required parameters, rate limits).

Layout (the sandbox imports nothing from the rest of the bot):

- ``workspace.py`` — state and server methods, no I/O; changes are announced as events.
- ``seed.py`` — the seeded users and rooms of the ``rcmod sandbox`` contract.
- ``permissions.py`` — Rocket.Chat's default permission table (data).
- ``rest.py`` — REST handlers and the route table; ``ddp.py`` — DDP session core and socket shell.
- ``releases.py`` — what differs by Rocket.Chat release (routes added, refusal answers).
- ``ratelimit.py``, ``faults.py``, ``wire.py`` (ids, dates), ``errors.py``.
- ``server.py`` — :class:`Sandbox`, the composition root, and :func:`serve` for the CLI.

Typical use::

    sandbox = Sandbox(clock=fake_clock, rate_limits=RateLimits(rest_calls=3, rest_window=5))
    url = await sandbox.start()
    seed = sandbox.seed_info()          # users (with passwords and tokens) and rooms
    sandbox.post_as("alice", "general", "hello")
    await sandbox.stop()
"""

from bot.sandbox.ratelimit import RateLimits
from bot.sandbox.server import Sandbox, serve
from bot.sandbox.workspace import Workspace

__all__ = ["RateLimits", "Sandbox", "Workspace", "serve"]
