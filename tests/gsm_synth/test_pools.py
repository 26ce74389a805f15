"""Split hygiene: pools are disjoint by problem id, and eval solution templates never reach training."""
import pytest

from gsm_synth import generate, overlap, pool_of, rows


def pool_rows(pool, n, seed=0):
    return list(rows("2-9", "zoo,school", "forward,reverse", n=n, seed=seed, pool=pool))


def test_generated_problems_belong_to_their_pool():
    for pool in ("pretrain", "midtrain", "rl", "eval"):
        p = generate(7, "zoo", seed=1, index=3, pool=pool)
        assert p.pool == pool_of(p.to_dict()) == pool


def test_pools_are_disjoint_by_id_and_template():
    train = pool_rows("pretrain", 500, seed=0) + pool_rows("rl", 200, seed=1)
    evals = pool_rows("eval", 300, seed=2)
    report = overlap(train, evals)
    assert report["ids"] == 0 and report["templates"] == 0
    # the same seed in different pools never yields the same problem either
    assert overlap(pool_rows("pretrain", 200), pool_rows("midtrain", 200))["ids"] == 0


def test_overlap_reports_shared_problems():
    a = [generate(6, "zoo", seed=0, index=i).to_dict() for i in range(20)]
    b = a[5:8] + [generate(6, "zoo", seed=1, index=i).to_dict() for i in range(5)]
    report = overlap(a, b)
    assert report["ids"] == 3 and report["templates"] >= 3
    assert set(report["id_examples"]) == {r["id"] for r in a[5:8]}


def test_unknown_pool_is_rejected():
    with pytest.raises(ValueError, match="unknown pool 'test'"):
        generate(5, pool="test")
