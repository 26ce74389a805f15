"""Every word the generator can write for a set of contexts: what a word-level tokenizer needs."""
from __future__ import annotations

import re
import string

from .arith import PLAIN_MAX
from .context import get_context, list_contexts
from .render import EXPRESSIONS
from .words import PUNCTUATION, split_words

# Words of the solution format (verify.py's grammar) and the answer line.
SOLUTION_WORDS = "Define as so is unknown We know Answer".split()


def vocabulary(contexts: list[str] | None = None, modulus: int | None = 23) -> list[str]:
    """Sorted words of problems, questions and solutions of `contexts` (default: all registered)."""
    words: set[str] = set(PUNCTUATION) | set(SOLUTION_WORDS) | set(string.ascii_letters)
    top = modulus - 1 if modulus else PLAIN_MAX
    words.update(str(i) for i in range(top + 1))
    for name in contexts or list_contexts():
        ctx = get_context(name)
        for pools in (ctx.groups, ctx.items):
            for names in pools.values():
                for n in names:
                    words.update(split_words(n))
        for table in (ctx.names, ctx.refs, ctx.questions, ctx.statements):
            for template in table.values():
                words.update(split_words(re.sub(r"\{\w+\}", " ", template)))
                if template.startswith("{T}"):
                    words.add("The")  # a statement starting with 'the ...' is capitalised
    for template in EXPRESSIONS.values():
        words.update(split_words(re.sub(r"\{\w+\}", " ", template)))
    return sorted(words)
