"""Sampling throughput of models.sampler.generate against full recompute and HF `generate`.

Usage: python bench/sample.py [--batch 128] [--prompt 150] [--new 200] [--runs 3] [--preset small]
Each timed run is a fresh child process (so peak RSS, ru_maxrss, is that engine's own), and the
engines take turns run by run, so drifting load on a shared machine hits all of them alike.
Rates count generated tokens only (batch x new / wall time, prefill included), EOS disabled. The fan-out
engines sample batch / fanout prompts fanout times each (--fanout 8: an RL step's groups; 64: evaluation),
where samples share their prompt's keys/values; HF gets the same batch as distinct rows.
`ours-auto` samples at the precision evaluation and RL resolve to on this machine (models/speed.py).
"""
from __future__ import annotations

import argparse
import json
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import torch  # noqa: E402

from models import GPT, generate, model_config  # noqa: E402
from models.machine import LoadMeter, describe_machine  # noqa: E402
from models.speed import resolve_precision, uses_bf16  # noqa: E402

VOCAB = 2000


def bench_config(args):
    """The preset, with --override "n_layer=4,n_embd=256,..." applied (same config for every engine)."""
    cfg = model_config(args.preset, VOCAB, args.prompt + args.new + 8)
    for item in filter(None, args.override.split(",")):
        key, value = item.split("=")
        setattr(cfg, key, type(getattr(cfg, key))(value))
    cfg.__post_init__()
    return cfg


def build_ours(args):
    torch.manual_seed(0)
    return GPT(bench_config(args)).eval()


def prompts(args, n):
    g = torch.Generator().manual_seed(1)
    return torch.randint(10, VOCAB, (n, args.prompt), generator=g).tolist()


def engine_ours(args, autocast: bool, n_prompts: int, n_samples: int):
    model, ps = build_ours(args), prompts(args, n_prompts)

    def run(warmup):
        new = 8 if warmup else args.new
        out = generate(model, ps, n_samples, new, eos_id=None, autocast=autocast,
                       max_batch=n_prompts * n_samples)
        assert sum(len(c) for s in out for c in s) == n_prompts * n_samples * new
    return run, n_prompts * n_samples * args.new


def engine_recompute(args):
    """No cache: every step runs the whole sequence again (greedy; sampling cost is negligible)."""
    model, ps, new = build_ours(args), torch.tensor(prompts(args, args.batch)), args.recompute_new

    @torch.inference_mode()
    def run(warmup):
        seq = ps
        for _ in range(2 if warmup else new):
            nxt = model(seq, last_only=True)[:, -1].argmax(-1, keepdim=True)
            seq = torch.cat([seq, nxt], dim=1)
    return run, args.batch * new


def engine_hf(args, cache: str):
    from transformers import LlamaConfig, LlamaForCausalLM

    ours = bench_config(args)
    cfg = LlamaConfig(vocab_size=VOCAB, hidden_size=ours.n_embd, intermediate_size=ours.ffn_hidden,
                      num_hidden_layers=ours.n_layer, num_attention_heads=ours.n_head,
                      num_key_value_heads=ours.n_kv_head, max_position_embeddings=ours.max_seq_len,
                      rope_theta=ours.rope_theta, rms_norm_eps=ours.norm_eps, tie_word_embeddings=True,
                      attn_implementation="sdpa")
    torch.manual_seed(0)
    model = LlamaForCausalLM(cfg).eval()
    ids = torch.tensor(prompts(args, args.batch))
    extra = {"cache_implementation": "static"} if cache == "static" else {}

    @torch.inference_mode()
    def run(warmup):
        new = 8 if warmup else args.new
        out = model.generate(ids, attention_mask=torch.ones_like(ids), do_sample=True, temperature=1.0,
                             top_k=0, top_p=1.0, max_new_tokens=new, min_new_tokens=new,
                             pad_token_id=0, eos_token_id=None, **extra)
        assert out.shape == (args.batch, args.prompt + new)
    return run, args.batch * args.new


def auto_bf16(args) -> bool:
    return uses_bf16(resolve_precision("auto", "cpu", build_ours(args), args.batch, workload="sample").value)


ENGINES = {
    "ours-auto": lambda a: engine_ours(a, auto_bf16(a), a.batch, 1),
    "ours-fp32": lambda a: engine_ours(a, False, a.batch, 1),
    "ours-bf16": lambda a: engine_ours(a, True, a.batch, 1),
    "ours-bf16-fanout": lambda a: engine_ours(a, True, a.batch // a.fanout, a.fanout),
    # the RL / eval workload: batch / fanout prompts, each sampled fanout times (RL groups 8, eval 64)
    "ours-auto-fanout": lambda a: engine_ours(a, auto_bf16(a), a.batch // a.fanout, a.fanout),
    "recompute-fp32": engine_recompute,
    "hf-dynamic": lambda a: engine_hf(a, "dynamic"),
    "hf-static": lambda a: engine_hf(a, "static"),
}


def child(args):
    """One warm-up and one timed run of one engine, reported as a JSON line."""
    torch.set_num_threads(2)
    if args.only.startswith("hf"):
        try:
            import transformers  # noqa: F401
        except ImportError:
            print(json.dumps({"skipped": "transformers is not installed"}))
            return
    run, n_tokens = ENGINES[args.only](args)
    run(warmup=True)
    meter, t0 = LoadMeter(), time.perf_counter()
    run(warmup=False)
    seconds = time.perf_counter() - t0
    foreign = meter.foreign_cores()
    peak_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"tok_s": n_tokens / seconds, "seconds": seconds, "peak_rss_mib": peak_mib,
                      "foreign_cores": foreign}))


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--preset", default="small")
    p.add_argument("--override", default="", help='config fields, e.g. "n_layer=4,n_kv_head=4"')
    p.add_argument("--batch", type=int, default=128)
    p.add_argument("--prompt", type=int, default=150)
    p.add_argument("--new", type=int, default=200)
    p.add_argument("--recompute-new", type=int, default=10,
                   help="new tokens for the no-cache run (few: flatters it, its cost grows with length)")
    p.add_argument("--fanout", type=int, default=8, help="samples per prompt in the fan-out run")
    p.add_argument("--runs", type=int, default=3)
    p.add_argument("--engines", default="ours-auto,ours-fp32,ours-bf16,ours-auto-fanout,recompute-fp32,hf-dynamic")
    p.add_argument("--only", help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.only:
        return child(args)

    print(f"preset={args.preset} {args.override} batch={args.batch} prompt={args.prompt} new={args.new} "
          f"vocab={VOCAB} threads=2 torch={torch.__version__}; engines interleaved round-robin")
    print(f"machine: {describe_machine()}")
    print(f"ours-auto: precision {resolve_precision('auto', 'cpu', build_ours(args), args.batch, workload='sample')}")
    runs = {name: [] for name in args.engines.split(",")}
    for rep in range(args.runs):
        for name in list(runs):
            if name == "recompute-fp32" and rep > 0:
                continue  # slow by design; one run tells the story
            cmd = [sys.executable, __file__, "--only", name] + [
                f"--{k.replace('_', '-')}={v}" for k, v in vars(args).items() if k not in ("only", "engines")]
            out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
            r = json.loads(out.strip().splitlines()[-1])
            if "skipped" in r:
                print(f"{name:18s} skipped: {r['skipped']}")
                del runs[name]
                continue
            runs[name].append(r)

    medians = {}
    for name, rs in runs.items():
        medians[name] = statistics.median(r["tok_s"] for r in rs)
        seconds = " / ".join(f"{r['seconds']:.2f}" for r in rs)
        print(f"{name:18s} {medians[name]:8.0f} tok/s (median; runs {seconds} s)  "
              f"peak RSS {max(r['peak_rss_mib'] for r in rs):.0f} MiB  "
              f"other load {max(r['foreign_cores'] for r in rs):.2f} cores")
    for ours in ("ours-auto", "ours-fp32", "ours-bf16", "ours-bf16-fanout", "ours-auto-fanout"):
        for other in ("recompute-fp32", "hf-dynamic", "hf-static"):
            if ours in medians and other in medians:
                print(f"{ours} / {other}: {medians[ours] / medians[other]:.1f}x")


if __name__ == "__main__":
    main()
