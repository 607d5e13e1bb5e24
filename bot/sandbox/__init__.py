"""A local simulated Rocket.Chat workspace (REST + DDP) for tests and the demo.

``Sandbox`` serves one seeded :class:`Workspace` over aiohttp; see ``server.py``. This package
imports nothing from the rest of the bot: it stands in for the server, not for the bot.
"""

from bot.sandbox.ratelimit import RateLimits
from bot.sandbox.server import Sandbox, serve
from bot.sandbox.workspace import Workspace

__all__ = ["RateLimits", "Sandbox", "Workspace", "serve"]
