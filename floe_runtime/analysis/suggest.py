"""'Did you mean' suggestions."""

from __future__ import annotations

import difflib
from collections.abc import Iterable


def closest(word: str, candidates: Iterable[str], cutoff: float = 0.6) -> str | None:
    """The candidate closest to `word`, or None when nothing is close enough."""
    options = list(candidates)
    matches = difflib.get_close_matches(word, options, n=1, cutoff=cutoff)
    if matches:
        return matches[0]
    lowered = {o.lower(): o for o in options}
    return lowered.get(word.lower())
