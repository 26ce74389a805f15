"""Generator and verifier throughput, one process. Prints medians of REPEATS timed windows.

    python bench/generator.py [--seconds 1.0] [--repeats 3]

Anchors measured on a 2-core CPU of the same kind, not side by side: GSM-Infinite's realistic
generator 240/s at op 10 and 126/s at op 20 (with its rejection loop); iGSM 556/s at op 10.
Targets here: >= 2,400/s at op 10, >= 1,250/s at op 20, verification >= 10,000 solutions/s at op 10.
"""
import argparse
import statistics
import time

import gsm_synth

OPS = (5, 10, 20, 40)


def rate(fn, seconds: float) -> float:
    n, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        fn(n)
        n += 1
    return n / (time.perf_counter() - start)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=float, default=1.0)
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    contexts = gsm_synth.list_contexts()
    print(f"problems/s (forward, mod 23, one process; median of {args.repeats} x {args.seconds}s)")
    print(f"{'context':10s}" + "".join(f"{'op ' + str(op):>10s}" for op in OPS))
    for c in contexts:
        cells = []
        for op in OPS:
            runs = [rate(lambda i: gsm_synth.generate(op, c, seed=r, index=i), args.seconds) for r in range(args.repeats)]
            cells.append(statistics.median(runs))
        print(f"{c:10s}" + "".join(f"{x:10,.0f}" for x in cells))
    print("\nverifier solutions/s on gold solutions, op 10 (truth table cached per problem, as when scoring many "
          "samples of one problem) and cold (first call per problem)")
    for c in contexts:
        problems = [gsm_synth.generate(10, c, seed=0, index=i) for i in range(500)]
        cold = []
        for r in range(args.repeats):
            fresh = [gsm_synth.generate(10, c, seed=100 + r, index=i) for i in range(500)]
            start = time.perf_counter()
            for p in fresh:
                gsm_synth.verify(p, p.solution)
            cold.append(len(fresh) / (time.perf_counter() - start))
        warm = [rate(lambda i: gsm_synth.verify(problems[i % 500], problems[i % 500].solution), args.seconds)
                for _ in range(args.repeats)]
        print(f"{c:10s} warm {statistics.median(warm):10,.0f}/s   cold {statistics.median(cold):10,.0f}/s")


if __name__ == "__main__":
    main()
