"""Input checks shared by every encoder (no torch import: the multilingual model avoids it)."""

from __future__ import annotations

from collections.abc import Sequence


def validate_texts(texts: Sequence[str]) -> list[str]:
    """``texts`` as a list; ``TypeError`` for a single ``str`` or a non-``str`` item."""
    if isinstance(texts, str):
        raise TypeError("texts must be a sequence of str, not a single str")
    batch = list(texts)
    for i, text in enumerate(batch):
        if not isinstance(text, str):
            raise TypeError(f"texts[{i}] is {type(text).__name__}, expected str")
    return batch


def utf8(text: str) -> bytes:
    """UTF-8 bytes; lone surrogates (not encodable) become U+FFFD on every encoder path."""
    return text.encode("utf-8", errors="replace")
