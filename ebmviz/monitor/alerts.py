"""Alerts a training log raises, each with its usual remedies: divergence, saturation, collapse, stall.

``check(series)`` reads a run's scalar series by role — the keys of ``ebmviz.training_log.TAGS`` (data_mean,
sample_mean, gap, noise_mean, saturation, …) plus ``"class_entropy"`` (the digit evaluator's entropy of the negatives'
predicted classes, in nats, at most ln 10 ≈ 2.303) — each as ``(steps (n,), values (n,))``, and returns the alerts
that hold, earliest first. A role that is missing (a foreign log maps only some tags) switches off the rules that
need it; nothing else is assumed about the log. Energies follow the library's convention, p ∝ exp(−E), so an energy
difference is a log-density ratio in nats; gap = E(x⁻) − E(x⁺) = sample_mean − data_mean (``training_log.MEANINGS``).

Every rule is causal: an alert's ``step`` is the first logged step at which its condition holds on the values logged
up to that step, so an alert shown by a live page never moves when later points arrive. "Points" below are logged
steps (one per --log-every), not iterations. The thresholds, and why:

divergence, non-finite
    Any value of any role is NaN or ±inf. Once a forward pass overflows, nothing logged after it means anything.
divergence, growing energies
    m = max(|data_mean|, |sample_mean|). The earlier scale r is the median of m over the first 10 points, but at
    least 1 nat (energies regularised by α·E² sit near 0.05, and a ratio of two near-zero energies means nothing).
    Fires where m ≥ 100·r and m has grown ≥ 10× over the last 20 points: large against where the run began, and
    still climbing geometrically. The shipped deep FRAME JKO run steps its energies from ~300 to ~3,000 within 12
    points and then stays there (a level shift of 10×, quiet); its KL run climbs from ~400 to 10²⁴ (the documented
    divergence) and is caught at ~10⁵. A run that drifted to 100× over thousands of points and settled stays quiet.
divergence, energies swap order
    gap < −max(data_std, sample_std) for 10 points in a row: the model rates its own samples more likely than the
    data by more than the data energies' spread across the batch, and keeps doing so. Contrastive-divergence
    training keeps the gap near 0 with either sign (the shipped short-run run's history wanders within a few
    hundredths of a nat of it; the shipped coarse-to-fine run's sits ~0.01 below zero for most of its first 1,500
    iterations; a short coarse-to-fine log swings to −4.7 for single points as its 28-px stage starts), so a sign
    change alone is normal; what is not is samples sitting clearly below the data for long, as in
    normalized-autoencoders #8 (whose author calls it fine "as long as pos_energy stays not too far from
    neg_energy"). In the healthy short-run log the gap never falls below −0.15 spreads.
saturation
    The share s of the negatives' pixels with |x| ≥ 0.99 is compared with the data's own share s_d
    (``data_saturation``, default ``MNIST_SATURATION`` = 0.83, measured on the embedded digits: 0.81 of their pixels
    are background at −1, 0.02 strokes at +1) by their odds s/(1 − s): fires when the negatives' odds reach 5× the
    data's for 5 points in a row (s ≥ 0.961 for MNIST; s ≥ 0.093 for images with 2% of their pixels at the walls).
    Odds, because a share near 1 (MNIST) has little room left and one near 0 much: 5× is the same step on both.
    s_d is taken as at least uniform noise's 0.01, so data with no pixel at the walls still leave a margin. A share
    that rises is not itself a sign: negatives started from uniform noise have s = 0.01 and healthy ones climb to the
    data's level (the shipped short-run model's samples: 0.89, odds 1.7× the data's), so only a level well beyond
    the data's counts. The share cannot tell strokes drawn in the wrong places: the shipped short-run model
    fine-tuned with negative augmentation draws white scribbles with s = 0.90 (0.51 of the pixels at +1); the class
    entropy and the pictures show that.
collapse
    H = class_entropy, smoothed by the median of the last 5 points. Fires when H has been diverse, its running peak
    ≥ 0.75·ln 10 (1.73 nats, ≈ 5.6 equally used classes), and the smoothed H has then fallen by ≥ ln 2 below that
    peak (half as many effectively used classes) for 5 points in a row. A peak is required because the negatives
    of an untrained model are noise, which the evaluator puts in a few classes (1.5 nats for the 64 noise images
    at step 0 of a short-run log, then 0.1 as the first negatives leave noise): low entropy at the start is not a
    fall, and neither is a dip before the run has been diverse. The entropy of 64 negatives is biased low by about
    (K − 1)/(2·64) ≈ 0.07 nats; the margins exceed that.
stall
    For 20 points in a row spanning ≥ 200 iterations: |gap| ≤ 0.1 nat and the samples still rate like noise,
    |sample_mean − noise_mean| ≤ 0.1 nat (without noise_mean: the negatives' saturation within 0.02 of uniform
    noise's 0.01). 0.1 nat is a 10% density ratio: the energy does not tell data, samples and noise apart, so the
    model is not learning and the sampler brings nothing back. A healthy short-run EBM leaves that state within 10
    iterations (then: gap 0.18, samples 0.2 nat below noise; noise 8 nats above data after 680 iterations, 16 at
    the end of the shipped run).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from ebmviz.training_log import SATURATED, SCALAR_ROLES

ROLES = (*SCALAR_ROLES, "class_entropy")  # the keys ``check`` accepts
KINDS = ("divergence", "saturation", "collapse", "stall")
MNIST_SATURATION = 0.83  # share of real MNIST pixels with |x| ≥ 0.99 (tests/test_monitor_alerts.py measures it)
NOISE_SATURATION = 1 - SATURATED  # of uniform noise U(−1, 1): P(|u| ≥ 0.99) = 0.01

GROWTH_REFERENCE_POINTS = 10  # the earlier scale: median |E| over these first points
GROWTH_FLOOR = 1.0  # nats: the earlier scale is at least this
GROWTH_LARGE = 100.0  # m ≥ this × the earlier scale
GROWTH_FACTOR = 10.0  # … and m grew ≥ this much …
GROWTH_WINDOW = 20  # … over this many points
SWAP_POINTS = 10  # gap below −spread this many points in a row
SATURATION_ODDS = 5.0  # the negatives' odds s/(1 − s) of a pixel at the walls reach this × the data's …
SATURATION_POINTS = 5  # … this many points in a row
COLLAPSE_PEAK = 0.75 * math.log(10)  # the entropy has been at least this diverse …
COLLAPSE_DROP = math.log(2)  # … and fell this far below its peak …
COLLAPSE_SMOOTH = 5  # (median of this many points) …
COLLAPSE_POINTS = 5  # … this many points in a row
STALL_NEAR = 0.1  # nats: |gap| and |E(x⁻) − E(noise)| within this …
STALL_NOISE_SATURATION = 0.02  # (without noise_mean: saturation within this of noise's) …
STALL_POINTS = 20  # … this many points in a row …
STALL_SPAN = 200  # … spanning at least this many iterations

REMEDIES: dict[str, tuple[str, ...]] = {
    "divergence": (
        "Lower the learning rate.",
        "Use more, smaller Langevin steps.",
        "Add the energy-magnitude penalty α·(E(x⁺)² + E(x⁻)²) to the loss (Du & Mordatch 2019).",
        "Use smoother activations (Swish/SiLU or ELU instead of ReLU).",
        "Add spectral normalisation where the paper's recipe uses it.",
    ),
    "saturation": (
        "Lower the Langevin step size or the noise.",
        "Use fewer Langevin steps per update.",
        "Use a replay buffer that restarts a share of its chains from noise.",
        "Clamp the samples less, or add a little noise to the data.",
    ),
    "collapse": (
        "Use a replay buffer with random restarts from noise.",
        "Add more noise to the sampler.",
        "Add a pulling-away term that pushes samples apart (EBGAN).",
        "Lower the learning rate.",
    ),
    "stall": (
        "Use more Langevin steps or a larger step size.",
        "Raise the learning rate.",
        "Check the sign of the loss: with p ∝ exp(−E) it is E(x⁺) − E(x⁻), data pushed down and samples up.",
    ),
}


@dataclass(frozen=True)
class Alert:
    kind: str  # "divergence" | "saturation" | "collapse" | "stall"
    step: int  # the first logged step at which it holds
    message: str  # what was seen, with the numbers
    remedies: tuple[str, ...]  # the usual remedies, short imperative sentences


def _series(name: str, pair) -> tuple[np.ndarray, np.ndarray]:
    """One role's (steps, values) as (int64 (n,), float64 (n,)) sorted by step, the last value kept per step."""
    if hasattr(pair, "steps") and hasattr(pair, "values"):
        pair = (pair.steps, pair.values)
    try:
        steps, values = pair
        steps, values = np.asarray(steps), np.asarray(values, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"series[{name!r}] must be a pair (steps, values) of numeric arrays: {exc}") from None
    if steps.ndim != 1 or values.shape != steps.shape:
        raise ValueError(f"series[{name!r}]: steps and values must be 1-D of one length, got shapes "
                         f"{steps.shape} and {values.shape}")
    if steps.size and not np.issubdtype(steps.dtype, np.integer):
        if not np.all(np.isfinite(steps)) or np.any(steps != np.round(steps)):
            raise ValueError(f"series[{name!r}]: steps must be whole numbers")
    steps = steps.astype(np.int64)
    if np.all(steps[1:] > steps[:-1]):  # as a log is read: nothing to sort
        return steps, values
    order = np.argsort(steps, kind="stable")
    steps, values = steps[order], values[order]
    last = np.r_[steps[1:] != steps[:-1], True]  # a rewritten step: its last value
    return steps[last], values[last]


def _aligned(s: dict, *roles: str) -> tuple[np.ndarray, ...] | None:
    """The steps every one of ``roles`` logged, and each role's values there; None when one is missing."""
    if any(r not in s for r in roles):
        return None
    steps = s[roles[0]][0]
    for r in roles[1:]:
        if not np.array_equal(steps, s[r][0]):  # roles logged together (the usual case) need no intersection
            steps = np.intersect1d(steps, s[r][0], assume_unique=True)
    if not steps.size:
        return None
    return (steps, *(v if np.array_equal(st, steps) else v[np.searchsorted(st, steps)] for st, v in
                     (s[r] for r in roles)))


def _run_lengths(mask: np.ndarray) -> np.ndarray:
    """(n,) ints: how many points in a row, ending at each point, have ``mask`` true."""
    idx = np.arange(mask.size)
    last_false = np.maximum.accumulate(np.where(mask, -1, idx))
    return idx - last_false


def _first(hold: np.ndarray) -> int | None:
    hits = np.flatnonzero(hold)
    return int(hits[0]) if hits.size else None


def _nonfinite(s: dict) -> Alert | None:
    found = []  # (step, role, value)
    for role, (steps, values) in s.items():
        i = _first(~np.isfinite(values))
        if i is not None:
            found.append((int(steps[i]), role, values[i]))
    if not found:
        return None
    step = min(f[0] for f in found)
    roles = ", ".join(f"{r} = {v}" for st, r, v in sorted(found) if st == step)
    return Alert("divergence", step, f"A non-finite value at step {step}: {roles}. Nothing logged after an overflow "
                 "means anything; go back to the last checkpoint before it.", REMEDIES["divergence"])


def _growth(s: dict) -> Alert | None:
    roles = [r for r in ("data_mean", "sample_mean") if r in s]
    got = _aligned(s, *roles) if roles else None
    if got is None or got[0].size <= GROWTH_REFERENCE_POINTS:
        return None
    steps, *energies = got
    m = np.max(np.abs(energies), axis=0)
    early = m[:GROWTH_REFERENCE_POINTS]  # a non-finite value there is the other rule's: the floor stands in
    ref = max(float(np.median(early)), GROWTH_FLOOR) if np.isfinite(early).all() else GROWTH_FLOOR
    before = m[np.maximum(np.arange(m.size) - GROWTH_WINDOW, 0)]
    with np.errstate(invalid="ignore"):
        hold = (m >= GROWTH_LARGE * ref) & (m >= GROWTH_FACTOR * before) & np.isfinite(m)
    hold[:GROWTH_REFERENCE_POINTS] = False
    i = _first(hold)
    if i is None:
        return None
    j = max(i - GROWTH_WINDOW, 0)
    with np.errstate(divide="ignore"):
        return Alert("divergence", int(steps[i]),
                     f"Energy magnitudes are growing geometrically: max |E| is {m[i]:.3g} at step {steps[i]}, "
                     f"{m[i] / m[j]:.3g}× its {m[j]:.3g} at step {steps[j]} and {m[i] / ref:.3g}× the run's early "
                     f"scale ({ref:.3g}).", REMEDIES["divergence"])


def _swap(s: dict) -> Alert | None:
    spread_roles = [r for r in ("data_std", "sample_std") if r in s]
    if not spread_roles:
        return None
    got = _aligned(s, "gap", *spread_roles)
    if got is None:
        return None
    steps, gap, *spreads = got
    spread = np.max(spreads, axis=0)
    with np.errstate(invalid="ignore"):
        run = _run_lengths(gap < -spread)
    i = _first(run >= SWAP_POINTS)
    if i is None:
        return None
    k = i - SWAP_POINTS + 1
    return Alert("divergence", int(steps[i]),
                 f"The energies swapped order: the samples sit below the data, gap E(x⁻) − E(x⁺) from {gap[k]:.3g} to "
                 f"{gap[i]:.3g} over steps {steps[k]}–{steps[i]}, beyond the energies' batch spread "
                 f"({spread[i]:.3g}) at each of {SWAP_POINTS} logged steps.", REMEDIES["divergence"])


def _saturation(s: dict, data_saturation: float) -> Alert | None:
    if "saturation" not in s:
        return None
    steps, share = s["saturation"]
    limit = saturation_limit(data_saturation)
    with np.errstate(invalid="ignore"):
        run = _run_lengths(share >= limit)
    i = _first(run >= SATURATION_POINTS)
    if i is None:
        return None
    first = share[np.isfinite(share)][0]
    return Alert("saturation", int(steps[i]),
                 f"The negatives are saturating: {share[i]:.1%} of their pixels at |x| ≥ {SATURATED} at step "
                 f"{steps[i]} (it began at {first:.1%}), above {limit:.1%} for {SATURATION_POINTS} logged steps in "
                 f"a row; the data have {data_saturation:.1%}.", REMEDIES["saturation"])


def saturation_limit(data_saturation: float) -> float:
    """The saturation share at which the rule fires for data with this share (≥ noise's 0.01 is used)."""
    ref = max(data_saturation, NOISE_SATURATION)
    odds = SATURATION_ODDS * ref / (1 - ref)
    return odds / (1 + odds)


def _collapse(s: dict) -> Alert | None:
    if "class_entropy" not in s:
        return None
    steps, h = s["class_entropy"]
    if h.size < COLLAPSE_SMOOTH:
        return None
    windows = np.lib.stride_tricks.sliding_window_view(h, COLLAPSE_SMOOTH)
    smooth = np.full(h.size, np.nan)
    smooth[COLLAPSE_SMOOTH - 1:] = np.median(windows, axis=1)
    peak = np.fmax.accumulate(smooth)
    with np.errstate(invalid="ignore"):
        run = _run_lengths((peak >= COLLAPSE_PEAK) & (smooth <= peak - COLLAPSE_DROP))
    i = _first(run >= COLLAPSE_POINTS)
    if i is None:
        return None
    p = int(np.flatnonzero(smooth[: i + 1] == peak[i])[0])
    return Alert("collapse", int(steps[i]),
                 f"The negatives' diversity is collapsing: class entropy {smooth[i]:.2f} nats "
                 f"(≈ {np.exp(smooth[i]):.1f} classes in use) at step {steps[i]}, down from {peak[i]:.2f} "
                 f"(≈ {np.exp(peak[i]):.1f}) at step {steps[p]}; ten equally used digits give {math.log(10):.2f}.",
                 REMEDIES["collapse"])


def _stall(s: dict) -> Alert | None:
    got = _aligned(s, "gap", "sample_mean", "noise_mean")
    if got is not None:
        steps, gap, e_neg, e_noise = got
        noise_like = np.abs(e_neg - e_noise) <= STALL_NEAR
        evidence = "E(x⁻) − E(noise) {:.3g}".format
        values = e_neg - e_noise
    else:
        got = _aligned(s, "gap", "saturation")
        if got is None:
            return None
        steps, gap, values = got
        noise_like = np.abs(values - NOISE_SATURATION) <= STALL_NOISE_SATURATION
        evidence = "saturation {:.1%} (uniform noise: 1.0%)".format
    with np.errstate(invalid="ignore"):
        run = _run_lengths((np.abs(gap) <= STALL_NEAR) & noise_like)
    idx = np.arange(run.size)
    start = np.minimum(idx - run + 1, idx)  # where each point's stretch began (itself where it holds not)
    i = _first((run >= STALL_POINTS) & (steps - steps[start] >= STALL_SPAN))
    if i is None:
        return None
    k = int(start[i])
    return Alert("stall", int(steps[i]),
                 f"Training is stalled: from step {steps[k]} to {steps[i]} the gap stayed within ±{STALL_NEAR} nat "
                 f"(now {gap[i]:.3g}) while the samples still rate like uniform noise ({evidence(values[i])}).",
                 REMEDIES["stall"])


def check(series: Mapping[str, tuple[np.ndarray, np.ndarray]], *,
          data_saturation: float | None = None) -> list[Alert]:
    """The alerts a training log raises, sorted by step (one per rule that fires; see the module docstring).

    ``series``: role (one of ``ROLES``) -> (steps (n,) whole numbers, values (n,) floats), or any object with
    ``.steps`` and ``.values``; steps need not be sorted, a step logged twice keeps its last value, a role may be
    missing or empty. ``data_saturation``: the share of the training images' pixels with |x| ≥ 0.99, in [0, 1)
    (default ``MNIST_SATURATION``). Raises ``ValueError`` on an unknown role or malformed arrays.
    """
    if unknown := sorted(map(repr, set(series) - set(ROLES))):
        raise ValueError(f"unknown role(s) {', '.join(unknown)}; the roles are {', '.join(ROLES)}")
    ref = MNIST_SATURATION if data_saturation is None else float(data_saturation)
    if not 0 <= ref < 1:
        raise ValueError(f"data_saturation is a share of pixels in [0, 1), got {data_saturation!r}")
    s = {name: _series(name, pair) for name, pair in series.items()}
    s = {name: pair for name, pair in s.items() if pair[0].size}
    if "gap" not in s and (means := _aligned(s, "sample_mean", "data_mean")) is not None:
        s["gap"] = (means[0], means[1] - means[2])  # gap = E(x⁻) − E(x⁺) by its definition
    found = [_nonfinite(s), _growth(s), _swap(s), _saturation(s, ref), _collapse(s), _stall(s)]
    return sorted((a for a in found if a is not None), key=lambda a: (a.step, KINDS.index(a.kind)))
