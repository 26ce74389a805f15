"""GRPO's pieces, each testable alone: group-relative advantages, the clipped token-level policy loss
(DAPO/verl "token-mean") with an optional k3 KL, log-probs of sampled tokens, and the padded training
batch built from a rollout. The RL stage (pipelines/train/rl.py) calls exactly these."""
from __future__ import annotations

import hashlib
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from pipelines.train import rewards as R


def group_advantages(rewards: torch.Tensor, std_norm: bool = True, eps: float = 1e-6) -> torch.Tensor:
    """(G, n) rewards -> (G, n) advantages r - mean over the group, / (std + eps) if std_norm (unbiased
    std, as torch.std in verl/TTRL). A zero-variance group gets advantage 0."""
    adv = rewards - rewards.mean(dim=1, keepdim=True)
    if std_norm:
        adv = adv / (rewards.std(dim=1, keepdim=True) + eps)
    return adv


def zero_variance(rewards: torch.Tensor) -> torch.Tensor:
    """(G,) True where every sample of the group got the same reward (no learning signal)."""
    return rewards.max(dim=1).values == rewards.min(dim=1).values


def k3_kl(log_ratio: torch.Tensor) -> torch.Tensor:
    """Per-token k3 estimate of KL(policy || other) from log(other / policy): e^d - d - 1 >= 0."""
    return torch.exp(log_ratio) - log_ratio - 1.0


def grpo_token_terms(logp, old_logp, adv, eps_low: float, eps_high: float, kl_coef: float = 0.0,
                     ref_logp=None):
    """Per-token loss, clipped flags and k3 KL (None without a reference). logp/old_logp/ref_logp are
    (B, T) log-probs of the sampled tokens, adv is (B,) (or broadcastable to (B, T)).

    loss_t = -min(ratio A, clip(ratio, 1 - eps_low, 1 + eps_high) A) + kl_coef k3,
    ratio = exp(logp - old_logp), k3 = exp(ref - logp) - (ref - logp) - 1.
    """
    adv = adv[:, None] if adv.dim() == 1 else adv
    ratio = torch.exp(logp - old_logp)
    unclipped = ratio * adv
    clipped = ratio.clamp(1.0 - eps_low, 1.0 + eps_high) * adv
    loss = -torch.minimum(unclipped, clipped)
    is_clipped = clipped < unclipped  # the clip is what the loss sees
    k3 = None
    if ref_logp is not None:
        d = ref_logp - logp
        k3 = k3_kl(d)
        if kl_coef:
            loss = loss + kl_coef * k3
    return loss, is_clipped, k3


def token_mean(loss_tok, mask, tokens: float | None = None) -> torch.Tensor:
    """The response tokens' loss summed, / `tokens` (default: this batch's response tokens). The trainer
    passes its minibatch's count, so its micro-batches add up to the minibatch's token mean."""
    mask = mask.to(loss_tok.dtype)
    return (loss_tok * mask).sum() / (mask.sum().clamp(min=1.0) if tokens is None else max(tokens, 1.0))


def grpo_loss(logp, old_logp, adv, mask, eps_low: float = 0.2, eps_high: float = 0.28,
              kl_coef: float = 0.0, ref_logp=None) -> torch.Tensor:
    """Token-mean loss: sum over every response token of the batch / number of response tokens (the
    trainer computes the same two pieces, grpo_token_terms then token_mean, per micro-batch)."""
    loss, _, _ = grpo_token_terms(logp, old_logp, adv, eps_low, eps_high, kl_coef, ref_logp)
    return token_mean(loss, mask)


def token_logprobs(model, ids: torch.Tensor, temperature: float = 1.0, entropy: bool = False):
    """Log-probs of ids[:, 1:] given their prefixes, (B, T-1); with entropy=True also the entropy of each
    predictive distribution (no gradient)."""
    logits = model(ids[:, :-1]).float()
    if temperature != 1.0:
        logits = logits / temperature
    logp_all = F.log_softmax(logits, dim=-1)
    logp = logp_all.gather(-1, ids[:, 1:, None]).squeeze(-1)
    if not entropy:
        return logp, None
    with torch.no_grad():
        ent = -(logp_all.exp() * logp_all).sum(-1)
    return logp, ent


def derive_seed(*parts) -> int:
    return int.from_bytes(hashlib.sha256(":".join(map(str, parts)).encode()).digest()[:8], "little") >> 1


@dataclass
class Rollout:
    problems: list
    prompts: list[list[int]]
    completions: list[list[R.Completion]]  # m per prompt (the first n are trained on)
    groups: list[R.GroupRewards]
    truth: list[dict]  # logging only


@dataclass
class Batch:
    ids: torch.Tensor  # (rows, L) prompt + completion, right-padded
    mask: torch.Tensor  # (rows, L-1) True on response-token targets (EOS included, padding/prompt not)
    adv: torch.Tensor  # (rows,)
    lengths: torch.Tensor  # (rows,) real tokens per row


def build_batch(rollout: Rollout, adv: torch.Tensor, keep: torch.Tensor, n: int, pad_id: int) -> Batch:
    seqs, starts, advs = [], [], []
    for i in keep.nonzero().flatten().tolist():
        for j in range(n):
            seqs.append(rollout.prompts[i] + rollout.completions[i][j].ids)
            starts.append(len(rollout.prompts[i]))
            advs.append(float(adv[i, j]))
    width = max((len(s) for s in seqs), default=2)
    ids = torch.full((len(seqs), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(seqs), width - 1), dtype=torch.bool)
    for r, (s, start) in enumerate(zip(seqs, starts)):
        ids[r, :len(s)] = torch.tensor(s, dtype=torch.long)
        mask[r, start - 1:len(s) - 1] = True  # targets s[start:], predicted from positions start-1 ...
    return Batch(ids, mask, torch.tensor(advs, dtype=torch.float32),
                 torch.tensor([len(s) for s in seqs], dtype=torch.long))


@dataclass
class UpdateStats:
    """Sums over one RL step's update (this rank), and the means that are logged from them."""
    passes: int = 1  # optimizer passes (ppo_epochs x minibatches): loss and grad_norm are averaged over them
    flops: float = 0.0
    opt_steps: int = 0
    tokens: float = 0.0
    clipped: float = 0.0
    kl_old: float = 0.0
    kl_ref: float = 0.0
    entropy: float = 0.0
    entropy_tokens: float = 0.0
    loss: float = 0.0
    grad_norm: float = 0.0

    @torch.no_grad()
    def add(self, loss, mask, clipped, logp, old_logp, k3=None, entropy=None) -> None:
        """One micro-batch: its loss and (B, T) per-token terms on the response tokens `mask`."""
        m = mask.to(logp.dtype)
        self.loss += float(loss) / self.passes
        self.tokens += float(m.sum())
        self.clipped += float((clipped & mask).sum())
        self.kl_old += float((k3_kl(old_logp - logp) * m).sum())
        if k3 is not None:
            self.kl_ref += float((k3 * m).sum())
        if entropy is not None:
            self.entropy += float((entropy * m).sum())
            self.entropy_tokens += float(m.sum())

    def add_step(self, grad_norm) -> None:
        self.grad_norm += float(grad_norm) / self.passes
        self.opt_steps += 1

    def means(self, with_ref: bool) -> dict[str, float]:
        tok = max(self.tokens, 1.0)
        out = {"entropy": self.entropy / max(self.entropy_tokens, 1.0), "kl_old": self.kl_old / tok,
               "clip_frac": self.clipped / tok, "loss": self.loss, "grad_norm": self.grad_norm}
        if with_ref:
            out["kl"] = self.kl_ref / tok
        return out
