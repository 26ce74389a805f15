"""Word-level tokenizer over the generator's own vocabulary (every number is one token).

Splitting uses the same rule as the generator (`gsm_synth.words.WORD_PATTERN`), so every word the
generator can write is in the vocabulary. Decoding re-inserts spaces by the generator's conventions
(no space before `. , ; : ? )` nor after `(`; an apostrophe sticks to both neighbours; special tokens
touch their neighbours), which makes decode(encode(text)) == text for generated text.
"""
from __future__ import annotations

from pathlib import Path
from typing import Iterable

from tokenizers import AddedToken, Regex, pre_tokenizers
from tokenizers import Tokenizer as HFTokenizer
from tokenizers.models import WordLevel

from gsm_synth.words import WORD_PATTERN

SPECIAL_TOKENS = ["<pad>", "<bos>", "<eos>", "<unk>", "<question>", "</question>",
                  "<solution>", "</solution>", "<answer>", "</answer>"]  # ids 0..9, fixed
FILE_NAME = "tokenizer.json"
_NO_SPACE_BEFORE = {".", ",", ";", ":", "?", ")", "'"}
_NO_SPACE_AFTER = {"(", "'"}
_GLUED = frozenset(SPECIAL_TOKENS)


def _pre_tokenizer():
    return pre_tokenizers.Sequence([
        pre_tokenizers.WhitespaceSplit(),
        pre_tokenizers.Split(Regex(WORD_PATTERN), behavior="isolated"),
    ])


def join_words(words: Iterable[str], glued: frozenset[str] = frozenset()) -> str:
    """Inverse of splitting for the generator's text: single spaces except around punctuation.

    Words in `glued` (the special tokens) get no space on either side: "<question>Define".
    """
    parts: list[str] = []
    prev = None
    for word in words:
        if (parts and word not in _NO_SPACE_BEFORE and prev not in _NO_SPACE_AFTER
                and word not in glued and prev not in glued):
            parts.append(" ")
        parts.append(word)
        prev = word
    return "".join(parts)


class Tokenizer:
    """Thin wrapper around a HF `tokenizers.Tokenizer` with a WordLevel model."""

    def __init__(self, hf: HFTokenizer):
        self._hf = hf
        vocab = hf.get_vocab()
        for i, tok in enumerate(SPECIAL_TOKENS):
            if vocab.get(tok) != i:
                raise ValueError(f"special token {tok} must have id {i}, found {vocab.get(tok)}")
        self._id_to_token = [None] * len(vocab)
        for tok, i in vocab.items():
            self._id_to_token[i] = tok
        self.special_ids = frozenset(range(len(SPECIAL_TOKENS)))
        (self.pad_id, self.bos_id, self.eos_id, self.unk_id, self.question_id, self.question_end_id,
         self.solution_id, self.solution_end_id, self.answer_id, self.answer_end_id) = range(10)

    @property
    def vocab_size(self) -> int:
        return len(self._id_to_token)

    def token_to_id(self, token: str) -> int | None:
        return self._hf.token_to_id(token)

    def id_to_token(self, i: int) -> str:
        return self._id_to_token[i]

    def encode(self, text: str) -> list[int]:
        return self._hf.encode(text, add_special_tokens=False).ids

    def unknown_words(self, text: str) -> list[str]:
        """The words of `text` outside the vocabulary, each once: they would all read as <unk>."""
        enc = self._hf.encode(text, add_special_tokens=False)
        return list(dict.fromkeys(text[a:b] for i, (a, b) in zip(enc.ids, enc.offsets) if i == self.unk_id))

    def encode_batch(self, texts: list[str]) -> list[list[int]]:
        return [e.ids for e in self._hf.encode_batch(texts, add_special_tokens=False)]

    def decode(self, ids: Iterable[int], skip_special: bool = False) -> str:
        """Ids back to text. <pad> is always dropped; other specials are kept unless skip_special."""
        drop = self.special_ids if skip_special else {self.pad_id}
        return join_words((self._id_to_token[i] for i in ids if i not in drop), _GLUED)

    def save(self, directory: str | Path) -> Path:
        from gsm_synth.atomic import write_atomic  # several DDP ranks may save the same file at once

        path = Path(directory) / FILE_NAME
        write_atomic(path, self._hf.to_str())
        return path

    @classmethod
    def load(cls, directory: str | Path) -> "Tokenizer":
        path = Path(directory) / FILE_NAME
        try:
            return cls(HFTokenizer.from_file(str(path)))
        except Exception as e:  # missing file, bad JSON, or a tokenizer that is not ours
            reason = str(e).splitlines()[0] if str(e) else type(e).__name__
            raise ValueError(f"cannot load tokenizer from {path}: {reason}") from None


def build_tokenizer(words: Iterable[str], phrases: Iterable[str] = ()) -> Tokenizer:
    """Word-level tokenizer: specials at ids 0..9, then the distinct words in sorted order, then
    `phrases` (multi-word units such as "Pine Ridge" kept as one token; longest match wins)."""
    regular = sorted(set(words) - set(SPECIAL_TOKENS))
    vocab = {tok: i for i, tok in enumerate(SPECIAL_TOKENS + regular)}
    hf = HFTokenizer(WordLevel(vocab, unk_token="<unk>"))
    hf.pre_tokenizer = _pre_tokenizer()
    # Specials are matched before pre-tokenisation, so "<question>" is one token, not "<", ...
    hf.add_special_tokens(SPECIAL_TOKENS)
    # Phrases too are matched on the raw text, whole words only, before the words are split.
    hf.add_tokens([AddedToken(p, single_word=True, normalized=False) for p in sorted(set(phrases)) if " " in p])
    return Tokenizer(hf)
