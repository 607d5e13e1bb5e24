"""The I/O shells of each feature: each takes what the pure core in :mod:`bot.moderation` decides
and carries it out against the server and the store."""
