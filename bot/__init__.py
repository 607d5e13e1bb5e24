"""rcmod: a moderation bot for Rocket.Chat workspaces."""

__version__ = "0.1.0"
