"""`python -m pipelines.ship_bases study=<study> [preset=...] [bases=K] out=<runs> [to=bases]`: write the
pretrained bases of a study, already trained from scratch in <runs>/cache (`python -m pipelines.run
study=<study> base=scratch out=<runs>`), as shipped bases: bf16 safetensors, tokenizer and a record of how
each was made, its eval table on the study's design eval set (evaluated from the shipped weights) and
a greedy fingerprint (pipelines/study/shipped.py). For maintainers; users only load them."""
from __future__ import annotations

import json
import sys
import tempfile
import time
from dataclasses import asdict
from pathlib import Path

from gsm_synth.atomic import write_atomic
from gsm_synth.entry import error_line, run


def ship(argv: list[str], dest: Path) -> list[Path]:
    from models.machine import describe_machine
    from pipelines.common.checkpoint import load_model
    from pipelines.evaluation.evaluate import evaluate
    from pipelines.study import shipped
    from pipelines.study.cache import STAGE_INFO, plan, read_record, recipe_key
    from pipelines.study.load import eval_spec, load_study, stage_config
    from pipelines.study.report import metric_table_keys

    cfg = load_study(argv + ["base=scratch"])
    spec = eval_spec(cfg)
    written = []
    for stage in [r for r in plan(cfg) if r.kind == "pretrain"]:
        if not (stage.dir / STAGE_INFO).is_file():
            raise ValueError(f"{stage.name} (base {stage.base}) is not trained in {stage.dir.parent}; train it first: "
                             f"python -m pipelines.run {' '.join(argv)} base=scratch")
        info = read_record(stage.dir / STAGE_INFO, "retrain it with base=scratch force=true")
        summary = info.get("summary", {})
        machine = summary.get("machine")
        record = {
            "key": recipe_key("pretrain", stage_config(cfg, stage.name, stage.base), None),
            "preset": cfg.preset, "stage": stage.name, "seed": stage.config.seed, "trained_key": stage.key,
            "command": f"python -m pipelines.run study={cfg.study} preset={cfg.preset} bases={cfg.bases} base=scratch",
            "trained_by": (describe_machine(machine) if machine else "machine not recorded") +
                          f"; {info['resolved'].get('precision', '?')}, compile {info['resolved'].get('compile', '?')}",
            "resolved": info.get("resolved", {}), "wall_s": info.get("wall_s"), "summary": summary,
            "config": json.loads(json.dumps(asdict(stage.config), default=str)),
            "shipped_on": time.strftime("%Y-%m-%d"),
        }
        folder = shipped.export(stage.final, dest / f"{cfg.preset}-{stage.name}-{stage.base}", record)
        with tempfile.TemporaryDirectory() as tmp:  # score the shipped (bf16-stored) weights, not the trained ones
            shipped.install(folder, Path(tmp) / "final")
            model, tokenizer, _ = load_model(Path(tmp) / "final")
        results = evaluate(model, tokenizer, spec, progress=False)
        keys = metric_table_keys(cfg.k)
        record["eval"] = {"spec": results["spec"], "rows": [
            {"split": row["bin"], **{k: row[k] for k in keys if k in row}} for row in results["rows"]
            if row["context"] == "all"]}
        record["fingerprint"] = shipped.fingerprint(model, tokenizer, spec)
        record = json.loads((folder / shipped.RECORD).read_text()) | {"eval": record["eval"],
                                                                      "fingerprint": record["fingerprint"]}
        write_atomic(folder / shipped.RECORD, json.dumps(record, indent=2) + "\n")
        print(f"{folder}: key {record['key']}, " + ", ".join(
            f"{r['split']} pass@1 {r.get('process_pass@1', float('nan')):.3f}" for r in record["eval"]["rows"]))
        written.append(folder)
    return written


def main(argv: list[str] | None = None) -> int:
    from pipelines.common.config import ConfigError
    from pipelines.study.shipped import SHIPPED_DIR

    argv = sys.argv[1:] if argv is None else list(argv)
    dest = Path(next((a.split("=", 1)[1] for a in argv if a.startswith("to=")), SHIPPED_DIR))
    argv = [a for a in argv if not a.startswith("to=")]
    try:
        ship(argv, dest)
    except BrokenPipeError:
        raise
    except (ConfigError, ValueError, OSError) as e:
        return error_line(e)
    return 0


if __name__ == "__main__":
    run(main)
