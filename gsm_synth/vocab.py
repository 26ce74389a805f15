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


def phrases(contexts: list[str] | None = None) -> list[str]:
    """Multi-word units a tokenizer may keep whole: names ("Pine Ridge", "adult owl") and the fixed
    wording of templates ("the total number of adult animals in", "equals the sum of"). One token per
    phrase roughly halves sequence length, which is most of the cost of training on a CPU."""
    out: set[str] = set()

    def add(text: str) -> None:
        for run in re.split(r"[" + re.escape(PUNCTUATION) + r"]", text):
            run = " ".join(run.split())
            if " " in run:
                out.add(run)
                if run.startswith("the "):
                    out.add("The" + run[3:])

    for name in contexts or list_contexts():
        ctx = get_context(name)
        for pools in (ctx.groups, ctx.items):
            for names in pools.values():
                for n in names:
                    add(n)
        for table in (ctx.names, ctx.refs, ctx.questions, ctx.statements):
            for template in table.values():
                for literal in re.split(r"\{\w+\}", template):
                    add(literal)
    return sorted(out)
