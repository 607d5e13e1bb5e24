"""The bot's own HTTP endpoints (aiohttp) and its Prometheus metrics."""
