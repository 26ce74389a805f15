import pytest

from gsm_synth.words import split_words
from models import SPECIAL_TOKENS, Tokenizer, build_tokenizer

TEXTS = [
    "Define adult owl in Pine Ridge as a; so a = 3 * (b + c) = 3 * (4 + 5) = 4. Answer: 4.",
    "The number of adult owl's cubs equals 12 plus the sum of x, y and z. What is it?",
    "Define b as 1047; so b = 1047 - 3 = 1044.",
]


@pytest.fixture
def tok():
    return build_tokenizer(w for t in TEXTS for w in split_words(t))


def test_round_trip_is_exact(tok):
    for text in TEXTS:
        assert tok.decode(tok.encode(text)) == text
    assert tok.decode(tok.encode("a  =\n3 ;")) == "a = 3;"  # whitespace is normalised


def test_numbers_and_punctuation_are_single_tokens(tok):
    ids = tok.encode("1047 - 3 = 1044.")
    assert [tok.id_to_token(i) for i in ids] == ["1047", "-", "3", "=", "1044", "."]


def test_special_tokens_have_fixed_ids(tok):
    assert SPECIAL_TOKENS[:4] == ["<pad>", "<bos>", "<eos>", "<unk>"]
    assert [tok.token_to_id(t) for t in SPECIAL_TOKENS] == list(range(10))
    assert (tok.pad_id, tok.bos_id, tok.eos_id, tok.unk_id, tok.answer_id) == (0, 1, 2, 3, 8)
    text = "<bos><question>Define b as 1047.</question><answer>1044</answer><eos>"
    ids = tok.encode(text)
    assert ids[:2] == [1, 4] and ids[-1] == 2
    assert tok.decode(ids) == text
    assert tok.decode(ids + [0, 0], skip_special=True) == "Define b as 1047. 1044"
    assert tok.encode("zebra") == [tok.unk_id]


def test_build_is_deterministic(tok):
    words = [w for t in reversed(TEXTS) for w in split_words(t)] * 2
    assert build_tokenizer(words).encode(TEXTS[0]) == tok.encode(TEXTS[0])
    assert tok.vocab_size == 10 + len({w for t in TEXTS for w in split_words(t)})


def test_save_load_and_bad_files(tok, tmp_path):
    tok.save(tmp_path)
    assert Tokenizer.load(tmp_path).encode(TEXTS[1]) == tok.encode(TEXTS[1])
    with pytest.raises(ValueError, match=r"cannot load tokenizer from .*missing.*tokenizer\.json"):
        Tokenizer.load(tmp_path / "missing")
    (tmp_path / "tokenizer.json").write_text("{not json")
    with pytest.raises(ValueError, match=r"tokenizer\.json"):
        Tokenizer.load(tmp_path)


def test_every_context_round_trips_with_phrases_and_no_unknown_words():
    import gsm_synth
    from models import build_tokenizer
    from pipelines.common.text import completion_to_solution, encode_example

    full = build_tokenizer(gsm_synth.vocabulary(), gsm_synth.phrases())
    words_only = build_tokenizer(gsm_synth.vocabulary())
    for context in gsm_synth.list_contexts():
        for mode in ("forward", "reverse"):
            for op in (1, 4, 9, 16):
                p = gsm_synth.generate(op, context, mode, seed=0, index=op)
                ids, start = encode_example(full, p)
                assert full.unk_id not in ids
                text = p.problem + " " + p.question + " " + p.solution
                assert full.decode(full.encode(text)) == text
                assert gsm_synth.verify(p, completion_to_solution(full, ids[start:])).process_correct
                assert len(ids) < len(encode_example(words_only, p)[0])  # phrases shorten sequences
