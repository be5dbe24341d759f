"""Spot credentials and personal data in a prompt so the router can keep it off cloud models.

The whole prompt has to be scanned, so the scan is built from the cheapest operations
Python has, all on UTF-8 bytes: regexes that open with a literal (the engine jumps between
occurrences of it), single-byte finds, and byte-table translations. Anything that could start
at any character, such as "a long run of base64", is found by first mapping every token byte
to b"a" and searching for a literal run of them. Keywords are matched on ASCII-lowercased
bytes, which costs a fraction of str.lower() on non-English text.

The check is deliberately eager: a false positive costs a local model, a false negative
leaks a secret to a cloud provider. But agent harnesses fill every request with
identifiers (session UUIDs, git SHAs, content hashes, file paths, base64 images), and a
check that took those for keys kept every agent turn off the cloud: random-looking
material counts as a secret only once UUIDs, hex digests, ``key=`` labels, hash and
``base64,`` prefixes and path segments are set aside. Vendor key formats, PEM blocks,
labelled secrets and passwords are secrets wherever they appear.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Sequence
from functools import lru_cache
from typing import Final

KINDS: Final = (
    "api_key",
    "token",
    "private_key",
    "secret",
    "password",
    "email",
    "phone",
    "confidential",
)

# Runs of these bytes are where keys, tokens and base64 secrets live.
_TOKEN_BYTES: Final = frozenset(
    b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_+/=.-"
)
_RUN_MASK: Final = bytes(0x61 if b in _TOKEN_BYTES else 0x20 for b in range(256))
_MIN_RUN: Final = 16
_RUN: Final = b"a" * _MIN_RUN
_OPAQUE_MIN: Final = 40

# Vendor key formats: OpenAI/Anthropic, Stripe, GitHub, AWS, Slack, Google, GitLab, Hugging Face.
_API_KEY: Final = re.compile(
    rb"sk-[A-Za-z0-9_-]{20,}|[sr]k_(?:live|test)_[A-Za-z0-9]{16,}|gh[pousr]_[A-Za-z0-9]{30,}"
    rb"|github_pat_\w{40,}|(?:AKIA|ASIA)[0-9A-Z]{16}|xox[abposr]-[A-Za-z0-9-]{10,}"
    rb"|AIza[\w-]{35}|glpat-[\w-]{20,}|hf_[A-Za-z0-9]{30,}"
)
_JWT: Final = re.compile(rb"eyJ[\w-]{8,}\.eyJ[\w-]{8,}\.[\w-]{8,}")
_DIGIT: Final = re.compile(rb"\d")
# A long value after a secret-ish label: "Bearer abc...", "api_key = ...", "SECRET_KEY=...".
_SECRET_VALUE: Final = rb"[\w-]*[\"']?\s*[:=]\s*[\"']?[\w+/=.~-]{16,}"
_LABELLED: Final = (
    (re.compile(rb"bearer\s+[\w+/=.~-]{16,}"), "token"),
    *((re.compile(label + _SECRET_VALUE), "secret") for label in (b"secret", b"token", b"key")),
    (re.compile(rb"credential" + _SECRET_VALUE), "secret"),
)
_PRIVATE_KEY: Final = re.compile(rb"-----BEGIN [A-Z ]*PRIVATE KEY(?: BLOCK)?-----")

# Each keyword pattern opens with its own literal, so each is one fast scan.
_VALUE: Final = (
    r"[\"']?\s*(?:[:=]|：|\bis\b|\bes\b|\best\b|\bist\b|\bé\b)\s*[\"']?"
    r"(?!(?:str|string|none|null|true|false|undefined|required|input|request|getpass|os\.|env)\b)"
    r"(?![$<{*(\[])\S{3,}"
)
_PASSWORD_WORDS: Final = (
    r"pass(?:word|wd|code|wort|e)",
    "pwd",
    "contraseña",
    "kennwort",
    "senha",
    "密码",
    "パスワード",
)
_PHONE_WORDS: Final = ("phone", "tel", "电话", "電話")
_CONFIDENTIAL_WORDS: Final = ("confiden[tc]i", "vertraulich", "机密", "機密", "社外秘")

# Digits become b"0" and the usual separators b"-", so a formatted number is one literal shape.
_DIGIT_MASK: Final = bytes(
    0x30 if 0x30 <= b <= 0x39 else 0x2D if b in b" .-" else b if b in b"()" else 0x78
    for b in range(256)
)
# Both North American shapes, 555-123-4567 and (555) 123-4567, end in the same literal.
_PHONE_TAIL: Final = re.compile(rb"000-0000(?!0)")
# "+" then digits and separators, taken possessively (no backtracking on "+0000" timezones);
# the digit count is checked afterwards.
_INTERNATIONAL_PHONE: Final = re.compile(rb"\+\d[\d ().-]{6,20}+")
_PHONE_DIGITS: Final = range(8, 16)
_EMAIL_DOMAIN: Final = re.compile(rb"[a-z0-9-]+(?:\.[a-z0-9-]+)*\.[a-z]{2,}")
_EMAIL_LOCAL: Final = frozenset(b"abcdefghijklmnopqrstuvwxyz0123456789._%+-")


_Patterns = tuple[re.Pattern[bytes], ...]


def _keywords(words: Sequence[str], suffix: str = "") -> tuple[_Patterns, _Patterns]:
    """(patterns for ASCII keywords, patterns for the rest); the second set runs on non-ASCII."""
    compiled = [(w.isascii(), re.compile((w + suffix).encode())) for w in words]
    return (
        tuple(p for ascii_only, p in compiled if ascii_only),
        tuple(p for ascii_only, p in compiled if not ascii_only),
    )


_PASSWORD: Final = _keywords(_PASSWORD_WORDS, _VALUE)
_LABELLED_PHONE: Final = _keywords(_PHONE_WORDS, r"\w*\s*[:.]?\s*\+?\d[\d ().-]{6,}\d")
_CONFIDENTIAL: Final = _keywords(_CONFIDENTIAL_WORDS)


def _any(patterns: tuple[_Patterns, _Patterns], data: bytes, is_ascii: bool) -> bool:
    return any(p.search(data) for p in patterns[0]) or (
        not is_ascii and any(p.search(data) for p in patterns[1])
    )


def _long_runs(raw: bytes) -> dict[bytes, int]:
    """The distinct runs of at least _MIN_RUN token bytes, each with where it first starts.

    bytes.find skips through the masked text several bytes at a time where a regex steps
    through every b"a"; each find starts on a space, so what it finds is a run's start.
    """
    masked = raw.translate(_RUN_MASK)
    runs: dict[bytes, int] = {}
    start = masked.find(_RUN)
    while start >= 0:
        end = masked.find(b" ", start + _MIN_RUN)
        end = len(masked) if end < 0 else end
        runs.setdefault(raw[start:end], start)
        start = masked.find(_RUN, end)
    return runs


def _run_kinds(raw: bytes, low: bytes, found: set[str]) -> None:
    """Vendor keys, JWTs and opaque base64 among the long token runs; labelled secrets."""
    for run, start in _long_runs(raw).items():
        if _API_KEY.search(run):
            found.add("api_key")
        elif _JWT.search(run):
            found.add("token")
        elif (
            len(run) >= _OPAQUE_MIN
            and not raw[max(0, start - len(_ENCODED_PREFIX)) : start].endswith(_ENCODED_PREFIX)
            and _looks_random(run)
        ):
            found.add("secret")
    for pattern, kind in _LABELLED:
        if kind not in found and pattern.search(low):
            found.add(kind)


# Identifier shapes that are random-looking but not secret: UUIDs (any version, any case)
# and hex digests (git SHAs, content hashes).
_IDENTIFIER: Final = re.compile(
    rb"[0-9A-Fa-f]{8}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{12}"
    rb"|(?<![A-Za-z0-9])[0-9a-f]{7,}(?![A-Za-z0-9])|(?<![A-Za-z0-9])[0-9A-F]{7,}(?![A-Za-z0-9])"
)
# "sha512-<base64>" (npm integrity, CSP) and "base64," (data URIs): digests and media.
_DIGEST_PREFIX: Final = re.compile(rb"(?:sha(?:1|224|256|384|512)|md5)[-:_]", re.I)
_ENCODED_PREFIX: Final = b"base64,"
# What is left of a run once identifiers and labels are out must still be this long, and
# switch case or between letters and digits at least once every this many characters.
_PIECE_MIN: Final = 20
_SWITCH_DENSITY: Final = 5
# A label before the value, "sessionId=...": the label is a word, judged apart.
_LABEL: Final = re.compile(rb"[A-Za-z_][A-Za-z0-9_.-]{0,40}=(?!=)")
# A path segment of words: lower case, Capitalised or camelCase, optional digits at the end.
_PATH_WORD: Final = re.compile(
    rb"[~.]?(?:[A-Za-z][a-z]*[0-9]*|[A-Z]+[0-9]*|[0-9]+)(?:[_.@+-]?(?:[A-Za-z][a-z]*[0-9]*|[A-Z]+|[0-9]+))*"
)


def _is_path(run: bytes) -> bool:
    """A file path or URL path whose every segment is made of words."""
    segments = [seg for seg in run.split(b"/") if seg]
    return (
        run.count(b"/") >= 2
        and bool(segments)
        and all(_PATH_WORD.fullmatch(seg) and seg.count(b"_") < 8 for seg in segments)
        and all(_case_switches(seg) <= 4 for seg in segments)
    )


def _case_switches(seg: bytes) -> int:
    """How often a segment turns from lower to upper case or between letters and digits."""
    kinds = [
        2 if 0x61 <= b <= 0x7A else 1 if 0x41 <= b <= 0x5A else 0 if 0x30 <= b <= 0x39 else 3
        for b in seg
    ]
    return sum(
        1
        for a, b in itertools.pairwise(kinds)
        if a != b and not (a == 1 and b == 2) and 3 not in (a, b)
    )


def _random_piece(piece: bytes) -> bool:
    """Mixed case and digits with no dots, switching between them as often as random
    base64 does (about every other character): key material, not a camelCase name."""
    return (
        b"." not in piece
        and not piece.islower()
        and not piece.isupper()
        and _DIGIT.search(piece) is not None
        and _case_switches(piece) * _SWITCH_DENSITY >= len(piece)
    )


def _looks_random(run: bytes) -> bool:
    """Random material once identifiers, labels, digests and path segments are set aside."""
    if run.islower() or run.isupper() or _DIGIT.search(run) is None:
        return False  # the cheap test first: then no piece of the run can be random
    if _DIGEST_PREFIX.match(run) or _is_path(run):
        return False
    rest = _LABEL.sub(b" ", _IDENTIFIER.sub(b" ", run))
    return any(len(p) >= _PIECE_MIN and _random_piece(p) for p in rest.split())


def _has_email(low: bytes) -> bool:
    at = low.find(b"@")
    while at >= 0:
        if at and low[at - 1] in _EMAIL_LOCAL and _EMAIL_DOMAIN.match(low, at + 1):
            return True
        at = low.find(b"@", at + 1)
    return False


def _has_phone(raw: bytes, low: bytes, is_ascii: bool) -> bool:
    for m in _INTERNATIONAL_PHONE.finditer(raw):
        number = m.group().rstrip(b" .-(")
        digits_only = number.translate(None, b" ().-+")
        if len(digits_only) in _PHONE_DIGITS and not raw[m.start() - 1 : m.start()].isalnum():
            return True
    digits = raw.translate(_DIGIT_MASK)
    for m in _PHONE_TAIL.finditer(digits):
        before = digits[max(0, m.start() - 6) : m.start()]
        if before.endswith((b"(000)", b"(000)-")):
            return True
        if before.endswith(b"000-") and not before.endswith(b"0000-"):
            return True
    return _any(_LABELLED_PHONE, low, is_ascii)


def sensitive_kinds(text: str, user_text: str) -> tuple[str, ...]:
    """The kinds of sensitive content found, in KINDS order; empty when the prompt is clean.

    `text` is every message; `user_text` leaves out the operator's system prompt, where
    "confidential" usually describes the instructions themselves rather than the data.
    """
    raw = text.encode()
    low = raw.lower()
    is_ascii = text.isascii()
    found: set[str] = set()
    _run_kinds(raw, low, found)
    if b"-----BEGIN" in raw and _PRIVATE_KEY.search(raw):
        found.add("private_key")
    if _any(_PASSWORD, low, is_ascii):
        found.add("password")
    if _has_email(low):
        found.add("email")
    if _has_phone(raw, low, is_ascii):
        found.add("phone")
    # Usually there is no such word at all; only a hit pays for re-reading the user's part,
    # and only when a system prompt makes that part differ.
    if _any(_CONFIDENTIAL, low, is_ascii) and (
        user_text == text or _any(_CONFIDENTIAL, user_text.encode().lower(), user_text.isascii())
    ):
        found.add("confidential")
    return tuple(k for k in KINDS if k in found)


#: System prompts whose verdict is remembered: an agent harness sends the same one (OpenClaw:
#: 22 to 50 kB) with every turn, and scanning it is most of a decision's time.
SYSTEM_PROMPTS_KEPT: Final = 32


@lru_cache(maxsize=SYSTEM_PROMPTS_KEPT)
def _system_kinds(system: str) -> frozenset[str]:
    # "confidential" in a system prompt describes the instructions, not the data: not counted.
    return frozenset(sensitive_kinds(system, ""))


def request_kinds(system: str, rest: str) -> tuple[str, ...]:
    """:func:`sensitive_kinds` of a request whose system prompt is ``system`` and whose
    other messages are ``rest``: the system prompt is scanned once, then remembered."""
    found = _system_kinds(system) if system else frozenset()
    own = sensitive_kinds(rest, rest)
    return tuple(k for k in KINDS if k in found or k in own) if found else own
