"""How text splits into words: one rule shared by the vocabulary builder and the tokenizer.

Every run of non-space, non-punctuation characters is a word (so each number is one word), and each
punctuation or operator character is a word of its own.
"""
import re

PUNCTUATION = ".,;:?()=+-*'"
WORD_PATTERN = r"[.,;:?()=+\-*']|[^\s.,;:?()=+\-*']+"
_WORD_RE = re.compile(WORD_PATTERN)


def split_words(text: str) -> list[str]:
    return _WORD_RE.findall(text)
