"""Score every shipped checkpoint once and store the numbers for the model-zoo and anomaly pages
(``ebmviz.zoo``, ``checkpoints/scores.json``):

  python -m training scores                      # everything that is missing or whose file changed
  python -m training scores --only shortrun-mnist --force
  python -m training scores --skip-quality       # only the AUROC table (seconds per model)

Quality: ``--n`` samples of ``model.draw`` at the checkpoint's shipped settings (batches of 250 seeded seed, seed + 1,
…) scored by the evaluator, Fréchet distance against the held-out digits' features. AUROC: −E(x) telling the held-out
digits (all of them) apart from each set of ``ebmviz.anomaly.SETS`` (Fashion-MNIST when it can be loaded).
"""

from __future__ import annotations

import argparse
import datetime
import subprocess
import time
from pathlib import Path

from ebmviz import checkpoints, metrics
from ebmviz.anomaly import make_sets
from ebmviz.data import DataError, load_dataset_with_source
from ebmviz.models import KINDS
from ebmviz.zoo import ModelScores, energy_auroc, fingerprint, read_scores, sample_quality, scores_path


def main(argv: list[str], prog: str = "python -m training scores") -> int:
    ap = argparse.ArgumentParser(prog=prog, description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--only", nargs="*", default=None, help="checkpoint names (default: every readable one)")
    ap.add_argument("--force", action="store_true", help="recompute entries whose file did not change")
    ap.add_argument("--skip-quality", action="store_true", help="leave the sample quality as it is")
    ap.add_argument("--n", type=int, default=1000, help="samples per model for the quality")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", default="", help="scores file ('': checkpoints/scores.json)")
    args = ap.parse_args(argv)
    out = Path(args.out) if args.out else scores_path()
    scores = read_scores(out)
    test = load_dataset_with_source("mnist", "test")
    try:
        fashion = load_dataset_with_source("fashion-mnist", "test")
    except DataError as err:
        print(f"no Fashion-MNIST set: {err}")
        fashion = None
    sets = make_sets(test.images, args.seed, None if fashion is None else fashion.images)
    evaluator = checkpoints.load("evaluator-mnist")
    reference = metrics.features(evaluator, test.images)
    for info in checkpoints.list_checkpoints():
        if info.error or (args.only is not None and info.name not in args.only) or info.kind == "evaluator":
            continue
        cls, fp = KINDS[info.kind], fingerprint(info.path)
        entry = scores.models.get(info.name)
        if entry is not None and entry.fingerprint == fp and not args.force:
            print(f"{info.name}: unchanged since scored")
            continue
        model = checkpoints.load(info.path)
        fresh = ModelScores(fp, sum(p.numel() for p in model.parameters()),
                            quality=None if entry is None or args.skip_quality is False else entry.quality,
                            notes=dict(entry.notes) if entry else {})
        t = time.perf_counter()
        if cls.is_energy:
            fresh.auroc = energy_auroc(model, test.images, sets)
            fresh.notes["auroc"] = f"−E on {len(test.images)} held-out digits vs {len(test.images)} images per set"
        if cls.Draws is not None and not args.skip_quality:
            fresh.quality = sample_quality(model, evaluator, reference, args.n, args.seed)
            fresh.notes["quality"] = f"{args.n} samples of model.draw at the shipped settings, seed {args.seed}"
        scores.models[info.name] = fresh
        print(f"{info.name}: scored in {time.perf_counter() - t:.0f} s")
    try:
        commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True,
                                timeout=5).stdout.strip() or None
    except (OSError, subprocess.SubprocessError):
        commit = None
    scores.settings = {"n": args.n, "seed": args.seed, "sets": list(sets), "digits": test.source,
                       "fashion": None if fashion is None else fashion.source, "commit": commit,
                       "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds")}
    out.write_text(scores.to_json())
    print(f"wrote {out}")
    return 0
