"""Rule patterns and names, checked the same way in the config file and at the admin API.

Patterns come from the config file and from ``PUT /admin/routing/rules``, and run on the
request path over client text. Python's ``re`` backtracks: ``^(a+)+$`` on 26 characters
froze the event loop for seconds. RE2 matches in time linear in the text, and refuses
what it cannot do that way (back-references, look-around) when the rule is written.

Names and model ids are tokens: they go into response headers, log lines, the ledger and
TOML, where a space, a CR/LF or a lone surrogate would break the line they are on.
"""

from __future__ import annotations

from typing import Any, Final

import re2  # type: ignore[import-untyped]

#: Longest rule pattern accepted: a pattern is configuration, not data.
MAX_PATTERN_CHARS: Final = 1000
#: Most rules in the config file, and most rules stored through the admin API.
MAX_RULES: Final = 200
#: Longest name or model id.
MAX_TOKEN_CHARS: Final = 128


def _options() -> Any:
    options = re2.Options()
    options.case_sensitive = False
    # A bad pattern is reported once, as our error, not also by RE2 on stderr.
    options.log_errors = False
    return options


def compile_pattern(pattern: str) -> Any:
    """A rule pattern compiled case-insensitively by RE2; ValueError saying why not."""
    if len(pattern) > MAX_PATTERN_CHARS:
        raise ValueError(f"longer than {MAX_PATTERN_CHARS} characters")
    try:
        return re2.compile(pattern, _options())
    except re2.error as exc:
        detail = exc.args[0] if exc.args else exc
        if isinstance(detail, bytes):
            detail = detail.decode("utf-8", "replace")
        why = f"not a valid RE2 pattern (linear-time; no look-around): {detail}"
        raise ValueError(why) from None


def token_problem(value: str) -> str | None:
    """Why ``value`` cannot be a name or model id, or None if it can."""
    if not value:
        return "must not be empty"
    if len(value) > MAX_TOKEN_CHARS:
        return f"longer than {MAX_TOKEN_CHARS} characters"
    if not value.isprintable() or any(c.isspace() for c in value):
        return "must have no spaces, line breaks or control characters"
    return None


def check_token(value: str) -> str:
    """``value`` if it is a valid name or model id; ValueError (for pydantic) otherwise."""
    problem = token_problem(value)
    if problem is not None:
        raise ValueError(f"a name {problem}")
    return value
