"""The matching core: wordlists, evasion-resistant normalisation and one Aho-Corasick automaton.

Pure code: no I/O library is imported here. :func:`load_matcher` reads wordlist files with
:mod:`pathlib`; everything else takes values and returns values.

    matcher = load_matcher(["wordlists/examples"])   # raises WordlistError (a ConfigError)
    for match in matcher.scan(text):                  # list[Match], positions in ``text``
        match.term, match.list, match.start, match.end, match.severity, match.options.kind
"""

from bot.moderation.matcher import Candidate, Match, Matcher, ScanDetail, compile, load_matcher
from bot.moderation.normalize import NormalizeOptions
from bot.moderation.wordlist import (
    CATEGORIES,
    SEVERITIES,
    ListOptions,
    NotifyOptions,
    Term,
    Wordlist,
    WordlistError,
    WordlistWarning,
    parse_options,
    parse_terms,
    parse_wordlist,
    read_wordlists,
)

__all__ = [
    "CATEGORIES",
    "SEVERITIES",
    "Candidate",
    "ListOptions",
    "Match",
    "Matcher",
    "NormalizeOptions",
    "NotifyOptions",
    "ScanDetail",
    "Term",
    "Wordlist",
    "WordlistError",
    "WordlistWarning",
    "compile",
    "load_matcher",
    "parse_options",
    "parse_terms",
    "parse_wordlist",
    "read_wordlists",
]
