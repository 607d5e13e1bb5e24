"""REST: an asyncio facade over rocketchat_API and the mapping of its failures to bot.errors."""

from bot.rest.client import Features, RestClient, RetryPolicy, ServerInfo
from bot.rest.errors import classify

__all__ = ["Features", "RestClient", "RetryPolicy", "ServerInfo", "classify"]
