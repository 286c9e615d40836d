"""Score every shipped checkpoint once and store the numbers for the model-zoo and anomaly pages
(``ebmviz.analysis.zoo``, ``checkpoints/scores.json``):

  python -m training scores                      # everything that is missing or whose file changed
  python -m training scores --only shortrun-mnist --force
  python -m training scores --skip-quality       # only the AUROC table (seconds per model)

Quality: ``--n`` samples of ``model.draw`` at the checkpoint's shipped settings (batches of 250 seeded seed, seed + 1,
…) scored by the evaluator, Fréchet distance against the held-out digits' features. AUROC: −E(x) telling the held-out
digits (the first ``HELD_OUT``) apart from as many images of each set of ``ebmviz.analysis.anomaly.SETS`` (made with
``SETS_SEED``; Fashion-MNIST when it can be loaded), for ``model(x)`` and for each of the model's
``further_energies``. The held-out digits' own quality is stored for scale.
"""

from __future__ import annotations

import argparse
import datetime
import subprocess
import time
from pathlib import Path

from ebmviz import checkpoints
from ebmviz.analysis import metrics
from ebmviz.analysis.anomaly import HELD_OUT, SETS_SEED, auroc_row, make_sets
from ebmviz.analysis.zoo import ModelScores, fingerprint, read_scores, sample_quality, scores_path
from ebmviz.data import DataError, load_dataset_with_source
from ebmviz.models import KINDS


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
    digits = test.images[:HELD_OUT]
    sets = make_sets(digits, SETS_SEED, None if fashion is None else fashion.images)
    evaluator = checkpoints.load("evaluator-mnist")
    reference = metrics.features(evaluator, test.images)
    try:
        commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True,
                                timeout=5).stdout.strip() or None
    except (OSError, subprocess.SubprocessError):
        commit = None
    today = datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds")
    for info in checkpoints.list_checkpoints():
        if info.error or (args.only is not None and info.name not in args.only) or info.kind == "evaluator":
            continue
        cls, fp = KINDS[info.kind], fingerprint(info.path)
        entry = scores.models.get(info.name)
        if entry is not None and entry.fingerprint == fp and not args.force:
            print(f"{info.name}: unchanged since scored")
            continue
        model = checkpoints.load(info.path)
        keep = entry is not None and args.skip_quality and entry.fingerprint == fp  # old quality of this very file
        same_file = entry is not None and entry.fingerprint == fp
        fresh = ModelScores(fp, sum(p.numel() for p in model.parameters()),
                            quality=entry.quality if keep else None,
                            notes={"quality": entry.notes["quality"]} if keep and "quality" in entry.notes else {},
                            measured=entry.measured if same_file else {})  # a benchmark's numbers for this very file
        t = time.perf_counter()
        if cls.is_energy:
            fresh.auroc = auroc_row(model, digits, sets, device=model.device)
            fresh.notes["auroc"] = (f"−E on {len(digits)} held-out digits vs {len(digits)} images per set, "
                                    f"{today}, commit {commit}")
        if cls.further_energies:
            fresh.further_auroc = {e: auroc_row(model.named_energy(e), digits, sets, device=model.device)
                                   for e in cls.further_energies}
            fresh.notes["further_auroc"] = (f"{', '.join(cls.further_energies)}: as the AUROC, {today}, "
                                            f"commit {commit}")
        if cls.Draws is not None and not args.skip_quality:
            fresh.quality = sample_quality(model, evaluator, reference, args.n, args.seed)
            fresh.notes["quality"] = (f"{args.n} samples of model.draw at the shipped settings, seed {args.seed}, "
                                      f"{today}, commit {commit}")
        scores.models[info.name] = fresh
        print(f"{info.name}: scored in {time.perf_counter() - t:.0f} s")
    held_out = metrics.quality(evaluator, digits, metrics.features(evaluator, load_dataset_with_source(
        "mnist", "train").images[:HELD_OUT]))
    scores.settings = {"sets": list(sets), "digits": f"the first {len(digits)} of {test.source}",
                       "fashion": None if fashion is None else fashion.source, "last_run": today, "commit": commit,
                       "held_out_quality": {"confident_share": held_out.confident_share,
                                            "class_entropy": held_out.class_entropy, "n": held_out.n}}
    out.write_text(scores.to_json())
    print(f"wrote {out}")
    return 0
