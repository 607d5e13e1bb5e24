"""Persistence: the SQLite store and its migrations. No SQL lives outside this package."""

from bot.store.sqlite import *  # noqa: F403  (the public names are sqlite's __all__)
from bot.store.sqlite import __all__ as __all__
