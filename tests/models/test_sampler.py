import torch
import torch.nn as nn

from models import GPT, generate, model_config
from models.sampler import sample_next




V = 41


def random_tiny(n_kv_head=2, seed=0):
    """A tiny GPT with large random weights, so greedy continuations are varied (not copies)."""
    torch.manual_seed(seed)
    cfg = model_config("tiny", vocab_size=V, max_seq_len=64)
    cfg.n_kv_head = n_kv_head
    model = GPT(cfg).eval()
    with torch.no_grad():
        for p in model.parameters():
            if p.dim() == 2:
                p.normal_(0, 0.5)
    return model


def greedy_by_recompute(model, prompt, n):
    seq = list(prompt)
    with torch.no_grad():
        for _ in range(n):
            seq.append(int(model(torch.tensor([seq]))[0, -1].argmax()))
    return seq[len(prompt):]


PROMPTS = [[1, 2, 3, 4, 5, 6, 7, 8, 9], [10, 11], [12, 13, 14, 15, 16], [17]]


def test_cached_greedy_equals_full_recompute():
    for n_kv_head in (2, 4):
        model = random_tiny(n_kv_head)
        out = generate(model, PROMPTS, n_samples=1, max_new_tokens=20, temperature=0)
        for prompt, samples in zip(PROMPTS, out):
            assert samples == [greedy_by_recompute(model, prompt, 20)]
        # max_batch=1 takes the unpadded path; it must agree as well
        assert generate(model, PROMPTS, 1, 20, temperature=0, max_batch=1) == out


def test_fan_out_gives_n_samples_per_prompt():
    model = random_tiny()
    out = generate(model, PROMPTS, n_samples=3, max_new_tokens=7, seed=1)
    assert [len(s) for s in out] == [3, 3, 3, 3]
    assert all(len(c) == 7 for s in out for c in s)
    greedy = generate(model, PROMPTS, n_samples=3, max_new_tokens=7, temperature=0)
    assert all(s[0] == s[1] == s[2] for s in greedy)  # prefilled once, fanned out identically


def test_seeded_sampling_is_reproducible():
    model = random_tiny()
    a = generate(model, PROMPTS, 4, 12, seed=5)
    assert a == generate(model, PROMPTS, 4, 12, seed=5)
    assert a != generate(model, PROMPTS, 4, 12, seed=6)


def test_tiny_top_p_is_greedy():
    model = random_tiny()
    greedy = generate(model, PROMPTS, 2, 15, temperature=0)
    assert generate(model, PROMPTS, 2, 15, temperature=1.0, top_p=1e-6, seed=3) == greedy


def test_bf16_autocast_runs_and_mostly_agrees():
    model = random_tiny()
    fp32 = generate(model, PROMPTS, 1, 10, temperature=0)
    bf16 = generate(model, PROMPTS, 1, 10, temperature=0, autocast=True)
    assert [len(s[0]) for s in bf16] == [10] * len(PROMPTS)
    assert sum(a[0][0] == b[0][0] for a, b in zip(fp32, bf16)) >= len(PROMPTS) - 1  # first tokens


def test_logprobs_match_the_model():
    model = random_tiny()
    tokens, logprobs = generate(model, [PROMPTS[0]], 1, 6, seed=2, return_logprobs=True)
    seq = PROMPTS[0] + tokens[0][0]
    with torch.no_grad():
        logp = torch.log_softmax(model(torch.tensor([seq]))[0], dim=-1)
    expected = [logp[len(PROMPTS[0]) - 1 + t, tok].item() for t, tok in enumerate(tokens[0][0])]
    assert torch.allclose(torch.tensor(logprobs[0][0]), torch.tensor(expected), atol=1e-5)


def recomputed_logprobs(model, prompt, tokens):
    with torch.no_grad():
        logp = torch.log_softmax(model(torch.tensor([prompt + tokens]))[0], dim=-1)
    return [logp[len(prompt) - 1 + t, tok].item() for t, tok in enumerate(tokens)]


def test_shared_prompts_and_compaction_decode_as_a_full_recompute(monkeypatch):
    """Samples share their prompt's keys; rows that finish are dropped mid-run (and prompts with no row
    left): every sampled token's log-probability must still be the one a full forward pass gives."""
    from models.sampler import KVCache

    shrinks = []
    real = KVCache.select_rows

    def spy(cache, rows):
        before = cache.prompt_k.shape[1]
        real(cache, rows)
        shrinks.append((before, cache.prompt_k.shape[1]))
    monkeypatch.setattr(KVCache, "select_rows", spy)
    for n_kv_head in (2, 4):
        model = random_tiny(n_kv_head)
        tokens, logprobs = generate(model, PROMPTS, n_samples=5, max_new_tokens=24, seed=3, eos_id=14,
                                    return_logprobs=True)
        lengths = {len(c) for s in tokens for c in s}
        assert len(lengths) > 3  # rows finished at different steps
        for prompt, samples, lps in zip(PROMPTS, tokens, logprobs):
            for sample, lp in zip(samples, lps):
                assert torch.allclose(torch.tensor(lp), torch.tensor(recomputed_logprobs(model, prompt, sample)),
                                      atol=1e-4)
    assert shrinks and any(after < before for before, after in shrinks)  # whole prompts were dropped too


class CountUp(nn.Module):
    """Mock model: always predicts (last token + 1) mod V, so EOS arrives after a prompt-dependent delay."""

    def __init__(self):
        super().__init__()
        self.config = model_config("tiny", vocab_size=V, max_seq_len=64)
        self.dummy = nn.Parameter(torch.zeros(1))

    def forward(self, idx, targets=None, kv_cache=None, loss_mask=None, last_only=False):
        if kv_cache is not None:
            kv_cache.advance(idx.shape[1])
        logits = 30.0 * nn.functional.one_hot((idx + 1) % V, V).float()
        return logits[:, -1:] if last_only else logits


def test_rows_stop_at_their_own_eos():
    eos = 20
    prompts = [[5, 18], [3, 9], [19], [30]]  # EOS after 2, 11, 1 and never (30 -> 31 ...)
    out = generate(CountUp(), prompts, n_samples=2, max_new_tokens=12, eos_id=eos, temperature=0)
    assert out[0] == [[19, 20]] * 2
    assert out[1] == [list(range(10, 21))] * 2
    assert out[2] == [[20]] * 2
    assert out[3] == [[31, 32, 33, 34, 35, 36, 37, 38, 39, 40, 0, 1]] * 2
    # all rows finishing ends the loop early without error
    assert generate(CountUp(), [[19], [18]], 1, 50, eos_id=eos, temperature=0) == [[[20]], [[19, 20]]]


def test_sample_next_follows_the_distribution():
    probs = torch.tensor([0.1, 0.0, 0.6, 0.3])
    logits = probs.log().repeat(20000, 1)
    g = torch.Generator().manual_seed(0)
    freq = torch.bincount(sample_next(logits, 1.0, 1.0, g), minlength=4) / 20000
    assert torch.allclose(freq, probs, atol=0.015)
    # top_p=0.65 keeps 0.6 (below 0.65) and 0.3 (needed to reach it), drops 0.1
    freq = torch.bincount(sample_next(logits, 1.0, 0.65, g), minlength=4) / 20000
    assert torch.allclose(freq, torch.tensor([0.0, 0.0, 2 / 3, 1 / 3]), atol=0.015)
    assert sample_next(logits[:3], 0.0, 1.0, g).tolist() == [2, 2, 2]
