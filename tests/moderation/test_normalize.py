"""Normalisation: the same folding for terms and text, and its edge cases."""

from __future__ import annotations

import pytest

from bot.moderation import normalize
from bot.moderation.normalize import NormalizeOptions, analyse, base_fold, coarse, coarse_keys, readings


@pytest.mark.parametrize(
    ("text", "folded"),
    [
        ("FrEe", "free"),
        ("ＦＲＥＥ", "free"),  # fullwidth
        ("𝐟𝐫𝐞𝐞", "free"),  # mathematical bold
        ("ﬁne", "fine"),  # ligature
        ("Straße", "strasse"),  # casefold
        ("f\u200br\u200ce\u200de\u2060", "free"),  # zero-width space, joiners, word joiner
        ("\ufefffr\u00adee", "free"),  # BOM, soft hyphen
        ("fr\u202ee\u2066e", "free"),  # bidi controls
        ("fre\ufe0fe", "free"),  # variation selector
        ("frée", "free"),
        ("fre\u0301e", "free"),  # combining acute
        ("øłđ", "old"),
        ("frее", "free"),  # Cyrillic е
        ("ѕех", "sex"),  # Cyrillic dze, ie, ha
        ("αβγ", "aby"),  # Greek alpha, beta, gamma look like a, b, y
        ("İstanbul", "istanbul"),
        ("ΙDIΟΤ", "idiot"),  # Greek capitals Iota, Omicron, Tau: looked up before case folding
        ("ΝΕΤ", "net"),  # capital Nu is N (its small letter looks like v)
        ("Ну", "hy"),  # whole Cyrillic words fold too: look-alikes are look-alikes
        ("зорбакс", "зopбakc"),  # з and б look like digits, which are not letters
    ],
)
def test_base_fold(text: str, folded: str) -> None:
    assert base_fold(text).strip() == folded


@pytest.mark.parametrize(
    ("text", "options", "folded"),
    [
        ("frée", NormalizeOptions(diacritics=False), "frée"),
        ("frее", NormalizeOptions(confusables=False), "frее"),
        ("ＦＲＥＥ", NormalizeOptions(diacritics=False, confusables=False), "free"),
    ],
)
def test_base_fold_options(text: str, options: NormalizeOptions, folded: str) -> None:
    assert base_fold(text, options).strip() == folded


@pytest.mark.parametrize(
    ("text", "seen"),
    [
        ("Hello, World!", " hello world "),
        ("a55 455 2024", " ass ass 2o2a "),  # the coarse layer reads every digit; the exact check decides
        ("hell! @bob", " hell bob "),
        ("don't", " don t "),
        ("这是垃圾", " 这 是 垃 圾 "),
        ("a\u200bb", " ab "),
        ("  lots   of    space  ", " lots of space "),
        ("6 (a+b) 10€", " g a b ioe "),  # 6 reads as g; "( +" are word breaks here; € is e
        ("2day", " 2day "),  # 2 is not leetspeak: it is "to" far more often than a z
    ],
)
def test_coarse(text: str, seen: str) -> None:
    assert coarse(text) == seen


@pytest.mark.parametrize(
    ("text", "raw"),
    [
        ("b. a. d", "b  a  d"),  # runs of spaces stay: the matcher reads split letters from them
        ("Hi, you!", "hi  you "),
        ("这是", " 这  是 "),
    ],
)
def test_coarse_raw_keeps_the_gaps(text: str, raw: str) -> None:
    assert normalize.coarse_raw(text) == raw
    assert coarse(text) == normalize.collapse(raw)


def test_coarse_ascii_and_unicode_paths_agree() -> None:
    ascii_text = "Mixed CASE, digits 0134578 and $@!| punctuation."
    assert coarse(ascii_text) == coarse(ascii_text + "\u200b")


@pytest.mark.parametrize(
    ("text", "readings"),
    [
        ("plain text, hello!", ()),
        ("@bob hi", (normalize.AT,)),
        ("sh!t", (normalize.LEET_PUNCT_READING,)),
        ("1ame", (normalize.ALT,)),
        ("c@r1", (normalize.AT, normalize.ALT)),
        ("wow!! 2011", ()),
        ("fu(k", (normalize.LEET_PUNCT_READING,)),
        ("(see) this", ()),  # "(" at a word's start is punctuation
        ("shi+", (normalize.LEET_PUNCT_READING,)),  # "+" may end a word
        ("sh!+", (normalize.LEET_PUNCT_READING,)),
        ("+1 for that", ()),  # but not start it
        ("a+| b", ()),  # a run of them counts at a word's end only if it ends with "+"
        ("6itch", (normalize.ALT,)),
        ("666", ()),
    ],
)
def test_extra_readings(text: str, readings: tuple[int, ...]) -> None:
    assert normalize.extra_readings(text) == readings


@pytest.mark.parametrize(
    ("text", "reading", "seen"),
    [
        ("fu(k you", normalize.LEET_PUNCT_READING, " fuck you "),
        ("shi+, sh!+", normalize.LEET_PUNCT_READING, " shit shit "),
        ("(ock C++", normalize.LEET_PUNCT_READING, " ock ctt "),
        ("6itch ni66a", normalize.ALT, " bitch nibba "),
        ("6itch ni66a", normalize.PLAIN, " gitch nigga "),
        ("fr€e", normalize.PLAIN, " free "),
    ],
)
def test_leet_readings(text: str, reading: int, seen: str) -> None:
    assert coarse(text, reading) == seen


@pytest.mark.parametrize(
    ("term", "keys"),
    [
        ("Free Crypto", ("free crypto",)),
        ("sh!t", ("shit",)),
        ("c1it", ("ciit", "clit")),
        ("!!!", ("",)),
        ("fu(k", ("fuck",)),
        ("6ay", ("gay", "bay")),  # 6 is g or b: a key for each
        ("fr€e", ("free",)),
    ],
)
def test_coarse_keys(term: str, keys: tuple[str, ...]) -> None:
    assert coarse_keys(term) == keys


def test_analysis_maps_every_folded_character_to_its_original_span() -> None:
    text = "ａ\u200bb́ c"
    an = analyse(text)
    coarse_text, owners = an.coarse_with_owners(normalize.PLAIN)
    assert coarse_text == " ab c "
    spans = [(an.seg_start[k], an.seg_end[k]) for k in owners if k >= 0]
    assert [text[a:b] for a, b in spans] == ["ａ", "b́", " ", "c"]  # the invisible one folds to nothing


@pytest.mark.parametrize(
    ("text", "leet_letters"),
    [
        ("a55", {"5"}),  # in a word with letters: leetspeak
        ("455", set()),  # a number: not
        ("$ex", {"$"}),
        ("hell!", set()),  # "!" at a word's end is punctuation
        ("sh!t", {"!"}),
        ("@bob", {"@"}),
        ("fu(k", {"("}),
        ("(see", set()),  # "(" opening a word is punctuation
        ("shi+", {"+"}),
        ("+1", set()),
        ("fr€e", {"€"}),
        ("10€", set()),
        ("6ay", {"6"}),
    ],
)
def test_leetspeak_only_inside_words_with_letters(text: str, leet_letters: set[str]) -> None:
    an = analyse(text)
    got = {text[an.seg_start[k] : an.seg_end[k]] for k, ok in enumerate(an.eligible) if ok}
    assert got & set(normalize.LEET_READINGS) == leet_letters


def test_readings_offer_both_letters_for_one() -> None:
    an = analyse("1")
    assert readings(an, 0, 0, NormalizeOptions()) == [frozenset("1")]  # a number
    an = analyse("a1")
    assert readings(an, 0, 1, NormalizeOptions()) == [frozenset("a"), frozenset("1il")]


def test_six_reads_as_g_or_b() -> None:
    an = analyse("6ay")
    assert readings(an, 0, 2, NormalizeOptions()) == [frozenset("6gb"), frozenset("a"), frozenset("y")]


def test_compatibility_forms_of_leet_punctuation_take_the_unicode_path() -> None:
    # The matcher reads ASCII plus emoji with byte tables; "＠" and "‼" fold to "@" and "!!",
    # which have readings of their own, so they must not be taken for plain word breaks.
    pattern = normalize.not_a_word_break()
    assert pattern.search("nice 👍 — “quoted”") is None
    assert pattern.search("＠ss") is not None
    assert pattern.search("sh‼t") is not None
