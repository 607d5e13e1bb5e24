"""Operations: ``rcmod setup`` (create the bot's account and config) and ``rcmod doctor``
(check a config against the live server).

- ``checks.py`` — pure: which permissions and settings each feature needs, and the checks
  over what the server answered; :class:`~bot.ops.checks.Check` is the one result type.
- ``connect.py`` — REST clients with a short retry policy, and failures put into words.
- ``doctor.py``, ``setup.py`` — the I/O around the checks; setup rolls back what it created.
- ``command.py`` — arguments, prompts, output and exit codes for :mod:`bot.cli`.
"""

from bot.ops.checks import ALL_FEATURES, FEATURE_PERMISSIONS, Check, Status

__all__ = ["ALL_FEATURES", "FEATURE_PERMISSIONS", "Check", "Status"]
