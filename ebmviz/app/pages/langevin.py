"""Session state of the Langevin page's live run: one ``LiveRun``, rebuilt when the settings change."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import numpy as np
import streamlit as st

from ebmviz.analysis import chain_health, zoo
from ebmviz.analysis.chain_health import DUPLICATE_DISTANCE as DUPLICATE_DISTANCE, WALL as WALL
from ebmviz.analysis.embedding import fit_pca
from ebmviz.analysis.metrics import Prediction, saturation as saturation
from ebmviz.app import cache
from ebmviz.app.player import PlayerState
from ebmviz.app.state import Slot
from ebmviz.export import trajectory_arrays as trajectory_arrays
from ebmviz.models import Model
from ebmviz.sampling import LangevinConfig, LiveRun
from ebmviz.sampling.diagnostics import second_half_diagnostics as second_half_diagnostics
from ebmviz.sampling.starts import START_KINDS as START_KINDS
from ebmviz.sampling.tuning import tune_mala

LOW_ACCEPTANCE = 0.05  # below this share of accepted proposals MALA's chains barely move: the page warns


@dataclass(frozen=True)
class RunSpec:
    """Everything that determines a run; a new spec means a new chain (as Reset)."""

    model: str
    device: str
    config: LangevinConfig
    start: str
    n_chains: int
    seed: int
    upload_digest: str | None = None
    data_noise: float = 0.3


def digest(raw: bytes | None) -> str | None:
    return None if raw is None else hashlib.sha1(raw).hexdigest()[:12]


class LiveState(PlayerState):
    spec = Slot(None)  # the RunSpec of ``run``
    run = Slot(None)  # the LiveRun being played
    comparing = Slot(False)  # the short- vs long-run comparison was asked for (the button is "compare")
    tuned = Slot(None)  # the last ``MalaTuning`` the "Tune s" button made
    verdict = Slot(None)  # (time.monotonic(), Prediction or None): the evaluator's last reading while playing

    def reset(self, spec: RunSpec, run: LiveRun) -> None:
        self.spec, self.run, self.verdict = spec, run, None
        self.rewind()

    def clear(self) -> None:
        self.forget("spec", "run")
        self.rewind()


@st.cache_data(show_spinner="Fitting the PCA of the data…", max_entries=8)
def projection(model_name: str, device: str):
    """(PCA fitted on the model's images, their (N, 2) coordinates, labels or None, source), or None for a model
    without images (a user model started without --data)."""
    found = cache.model_data(cache.load_model(model_name, device))
    if found is None:
        return None
    images, labels, source = found
    pca = fit_pca(images)
    return pca, pca.transform(images), labels, source


def frame_series(frames: np.ndarray, frame_steps: np.ndarray, data_saturated: float | None) -> dict:
    """``traces_figure``'s per-frame keyword arguments for recorded frames (F, B, C, H, W) uint8 at ``frame_steps``
    (F,): the pixel range, each chain's saturated share, the diversity between chains, and ``data_saturated``."""
    pixels = chain_health.pixel_range(frames)
    distance, duplicates = chain_health.diversity_trace(frames)
    return dict(frame_steps=frame_steps, pixel_low=pixels.low, pixel_high=pixels.high, saturated=pixels.per_chain,
                data_saturated=data_saturated, mean_distance=distance, near_duplicates=duplicates)


@st.cache_data(show_spinner=False, max_entries=8)
def data_saturation(model_name: str, device: str) -> float | None:
    """The share of the model's own images' pixels at the walls (|x| ≥ ``WALL``): MNIST's test digits for a digit
    model, about 0.83, as their background sits at −1; None for a model without images."""
    found = cache.model_data(cache.load_model(model_name, device))
    return None if found is None else float(chain_health.saturation_share(found[0]).mean())


def shape_words(model: Model) -> str:
    """"28×28 grey images" or "32×32 RGB images": what the model's energy takes."""
    c, h, w = model.image_shape
    return f"{h}×{w} {'grey' if c == 1 else 'RGB'} images"


def long_run_check(name: str) -> str:
    """The long-run check stored for checkpoint ``name`` (``benchmarks/long_run.py --store``) as a sentence with a
    trailing space; '' when none is stored for its present file."""
    m = zoo.measured(name, "long_run")
    if m is None:
        return ""
    return (f"Measured for **{name}** on {m['chains']} chains from noise at {m['multiple']} × {m['steps']} steps: "
            f"{m['top_count']} ended as {m['top_digit']}s, and {100 * m['saturated']:.1f}% of pixels were saturated "
            f"(real digits: {100 * m['data_saturated']:.1f}%) (`{m['source']}`). ")


def tune_button(state: LiveState, model: Model, name: str, device: str, start: str, seed: int,
                upload: np.ndarray | None, data_noise: float, cfg: LangevinConfig) -> None:
    """"Tune s": short MALA pilots from this page's start walk down the step sizes (keeping σ) until one accepts
    half its proposals; the step size field takes that value. The last tuning is reported under the button."""

    def tune() -> None:
        x0 = cache.starts(start, 8, seed, name, device, upload, data_noise).to(device)
        result = tune_mala(model, x0, cfg, seed=seed)
        st.session_state[state.key("step_size")] = result.step_size
        state.tuned = result

    st.button("Tune s for this start", key=state.key("tune"), on_click=tune, icon=":material/tune:",
              help="Runs 20 MALA steps on 8 chains per step size, from 0.3 down, and keeps the first that "
                   "accepts at least half of its proposals")
    if state.tuned is not None:
        t = state.tuned
        tried = ", ".join(f"s = {s:g}: {a:.2f}" for s, a in t.tried)
        st.caption(f"Last tuning (σ = {t.noise_std:g}): {tried}.")


def notice_lines(energy: np.ndarray, accept: np.ndarray | None, frame: np.ndarray, pred: Prediction | None,
                 cfg: LangevinConfig, data_bright: float | None = None) -> list[str]:
    """Three "what to notice" lines read from the run on screen: ``energy`` (t+1, B), ``accept`` (t, B) or None,
    the frame on show (B, C, H, W) uint8, the evaluator's verdict on it (None off MNIST) and the bright-pixel share
    of the model's own images (``data_bright``; None: MNIST's, about a tenth)."""
    t = len(energy) - 1
    e0, e1 = float(np.median(energy[0])), float(np.median(energy[-1]))
    digits = frame.shape[1:] == (1, 28, 28)
    if t == 0:
        lines = [f"The chains have not moved yet: their median energy is {e0:.3g}. Press **Play** (or Step) and "
                 f"watch it fall as the images become {'digits' if digits else 'what the model finds likely'}."]
    else:
        way = "fell" if e1 < e0 else "rose"
        lines = [f"The median energy {way} from {e0:.3g} at step 0 to {e1:.3g} at step {t}: lower energy is what "
                 "the model calls likely, so the chains walked downhill."]
    if pred is not None:
        sure = int((pred.confidence >= 0.9).sum())
        digits, counts = np.unique(pred.label, return_counts=True)
        top = int(np.argmax(counts))
        lines.append(f"The digit evaluator is sure (≥ 90%) about {sure} of the {len(frame)} images on screen; the "
                     f"most common digit is {int(digits[top])} ({int(counts[top])} of them).")
    else:
        real = "real digits have about a tenth" if data_bright is None else \
            f"the model's own images have {100 * data_bright:.0f}%"
        lines.append(f"{100 * saturation(frame):.0f}% of the pixels on screen are bright (≥ 0.9 in [−1, 1]); {real}.")
    if accept is not None and len(accept):
        lines.append(f"MALA accepted {100 * float(accept.mean()):.0f}% of its proposals at T = {cfg.temperature:.3g}: "
                     "each rejected one leaves the chain where it was, which is what makes MALA exact (and slower).")
    else:
        lines.append(f"The temperature T = σ²/(2s) = {cfg.temperature:.3g} is far below 1: the noise only jitters "
                     "the descent. Switch the sampler to MALA to see how many of these steps an exact sampler "
                     "would accept.")
    return lines
