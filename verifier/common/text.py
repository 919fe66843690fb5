"""Plain-text safety: find and escape characters that can forge lines or reorder text (control, bidi, line separators)."""

from __future__ import annotations

import unicodedata

# Bidirectional overrides and isolates reorder what a reader sees; line and paragraph separators break lines.
_INVISIBLE_BREAKERS = frozenset("\u2028\u2029\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069\u200e\u200f\u061c")


def is_unsafe_char(ch: str) -> bool:
    """True for a control character (C0, C1, DEL), a bidi control or a line/paragraph separator."""
    return unicodedata.category(ch) == "Cc" or ch in _INVISIBLE_BREAKERS


def has_unsafe_chars(text: str) -> bool:
    """True when text holds any character is_unsafe_char refuses."""
    return any(is_unsafe_char(c) for c in text)


def escape_unsafe(text: str) -> str:
    """Text with every unsafe character shown as an escape (\\n, \\t, \\u202e), so one value stays on one line."""
    named = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}
    return "".join(named.get(c) or (f"\\u{ord(c):04x}" if is_unsafe_char(c) else c) for c in text)
