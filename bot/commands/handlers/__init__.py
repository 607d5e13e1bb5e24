"""Chat command handlers: the I/O behind each command declared in :mod:`bot.commands.spec`."""
