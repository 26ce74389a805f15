import pytest
import torch

from models import GPT, PRESETS, GPTConfig, model_config




def tiny(n_kv_head=2, vocab=37, seq=32):
    cfg = model_config("tiny", vocab_size=vocab, max_seq_len=seq)
    cfg.n_kv_head = n_kv_head
    return GPT(cfg)


@pytest.mark.parametrize("n_kv_head", [1, 2, 4])  # 4 = no GQA (n_head is 4)
def test_forward_shapes_and_loss(n_kv_head):
    torch.manual_seed(0)
    model = tiny(n_kv_head)
    idx = torch.randint(0, 37, (3, 11))
    assert model(idx).shape == (3, 11, 37)
    logits, loss = model(idx, targets=torch.randint(0, 37, (3, 11)))
    assert logits.shape == (3, 11, 37)
    # small init: close to a uniform guess
    assert loss.ndim == 0 and abs(loss.item() - torch.log(torch.tensor(37.0)).item()) < 0.5
    assert model(idx, last_only=True).shape == (3, 1, 37)


def test_loss_ignores_masked_positions():
    torch.manual_seed(0)
    model = tiny()
    idx = torch.randint(0, 37, (2, 9))
    targets = idx.clone()
    targets[:, :5] = -100
    mask = torch.zeros_like(idx, dtype=torch.bool)
    mask[:, 5:] = True
    _, by_ignore = model(idx, targets=targets)
    _, by_mask = model(idx, targets=idx, loss_mask=mask)
    assert torch.allclose(by_ignore, by_mask)
    _, full = model(idx, targets=idx)
    assert not torch.allclose(full, by_mask)


def test_tied_embeddings_and_counts():
    model = tiny()
    assert model.lm_head.weight is model.embed.weight
    n = model.num_params()
    assert n == sum(p.numel() for p in model.parameters())
    assert model.num_params(non_embedding=True) == n - 37 * 32
    # 6N dominates; the attention term grows with the context.
    assert model.flops_per_token(32) > 6 * model.num_params(non_embedding=True)
    assert model.flops_per_token(64) > model.flops_per_token(32)


def test_overfits_a_tiny_batch():
    torch.manual_seed(0)
    model = tiny()
    idx = torch.randint(0, 37, (4, 16))
    opt = torch.optim.AdamW(model.parameters(), lr=1e-2)
    first = None
    for _ in range(50):
        _, loss = model(idx[:, :-1], targets=idx[:, 1:])
        first = first if first is not None else loss.item()
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert loss.item() < 0.5 * first


def test_presets_build_and_unknown_preset_error():
    assert set(PRESETS) == {"tiny", "small", "paper"}
    small = GPT(model_config("small", vocab_size=2000, max_seq_len=512))
    assert 0.8e6 <= small.num_params() <= 5e6  # "a few M" at most: it must train fast on 2 cores
    paper = model_config("paper", vocab_size=2000, max_seq_len=2048)
    assert (paper.n_layer, paper.n_embd, paper.n_head, paper.n_kv_head) == (12, 768, 12, 2)
    with pytest.raises(ValueError, match="unknown model preset 'huge'; valid presets: tiny, small, paper"):
        model_config("huge", vocab_size=10, max_seq_len=10)


def test_bad_head_counts_rejected():
    with pytest.raises(ValueError, match="n_kv_head=3 does not divide n_head=4"):
        GPTConfig(vocab_size=10, n_embd=32, n_head=4, n_kv_head=3)
