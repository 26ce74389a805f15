"""The "did you mean" hint every one-line error shares."""
from __future__ import annotations

import difflib


def did_you_mean(word: str, options, prefix: str = "") -> str:
    """" (did you mean 'x'?)" for the option `word` most likely meant (one it begins, else the closest
    spelling), or "" when none is close. `prefix` is put before the suggestion (e.g. a key's section)."""
    options = [str(o) for o in options]
    close = [o for o in options if word and o.startswith(word) and o != word] or \
        difflib.get_close_matches(word, options, n=1)
    return f" (did you mean '{prefix}{close[0]}'?)" if close else ""
