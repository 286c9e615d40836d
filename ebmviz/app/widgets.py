"""Shared widgets: the sidebar (seed, device), the model picker every page uses, the sampler form."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import streamlit as st

from ebmviz import catalogue, checkpoints
from ebmviz.app import links, presentation
from ebmviz.app.cache import load_model
from ebmviz.device import available
from ebmviz.images import ImageError, image_for_shape
from ebmviz.models import Model
from ebmviz.sampling import LangevinConfig
from ebmviz.sampling.tuning import MALA_START
from ebmviz.user_model import UserModelError

SEED, DEVICE = "seed", "device"  # the sidebar's session keys, read by every page
SAMPLER_WIDGETS = ("method", "n_steps", "record_every", "step_size", "noise_std", "clip_on", "grad_clip", "clamp")
# Caps: no request may exhaust memory or hold the server for minutes.
MAX_STEPS = 20_000  # most steps of a run in the sampler form (a live run samples at most ~1 s per rerun)
MAX_FRAMES = 1_000  # most frames a run records: "Record every" is raised to keep within (64 chains: 50 MB)
MAX_RUN_WORK = 100_000  # most chains × steps computed in one request outside the player: on 2 CPU cores about 15 s
#                         for the short-run energy, 2.5 min for the heaviest shipped one (coarse-to-fine at 28 px)
RANGES = {"n_steps": (1, MAX_STEPS), "record_every": (1, 1000), "step_size": (1e-8, 1e6), "noise_std": (0.0, 100.0),
          "grad_clip": (1e-6, 1e6)}  # the sampler form's number inputs: (min, max)


@dataclass(frozen=True)
class Shared:
    """What the sidebar sets for every page."""

    seed: int  # same seed and settings, same chains
    device: str  # where models run: "cpu", or "cuda"/"mps" when the machine has one


def sidebar() -> None:
    """Draw the shared sidebar: seed and device."""
    with st.sidebar:
        st.number_input("Seed", min_value=0, max_value=2**31 - 1, value=0, step=1, key=SEED,
                        help="Same seed and settings give the same chains, on every page")
        st.selectbox("Device", available(), key=DEVICE,
                     help="Where every page runs its models: cpu always works; cuda/mps appear when this machine "
                          "has them")
        presentation.toggle()


def shared_fields() -> list[links.Field]:
    """The sidebar's linked widgets: the seed, the device (a device this machine lacks is refused) and presentation
    mode."""
    return [links.integer(SEED, "seed", 0, 2**31 - 1), links.choice(DEVICE, "device", available()),
            links.flag(presentation.PRESENT, presentation.PRESENT)]


def share(fields: list[links.Field], extra: dict[str, str] | None = None) -> None:
    """Write the sidebar's and the page's settings (and ``extra``) to the URL: call after the page's widgets."""
    links.publish([*shared_fields(), *fields], extra)


def checkpoint_names(accept: Callable[[type[Model]], bool]) -> list[str]:
    """Names of the usable models whose class ``accept``s (shipped, added folders, the user's own): what a page's
    picker offers (and a link may name)."""
    return catalogue.names(accept)


def shared() -> Shared:
    """The sidebar's current values."""
    return Shared(seed=int(st.session_state.get(SEED, 0)), device=st.session_state.get(DEVICE, "cpu"))


def model_picker(label: str, key: str, accept: Callable[[type[Model]], bool],
                 default: str | None = None, report_broken: bool = True) -> tuple[str, Model]:
    """A picker over the models whose class ``accept``s (shipped, added folders, the user's own); returns (name,
    model on the device).

    Unusable files and user models are listed as warnings (unless ``report_broken`` is off, for a page's second
    picker); the page stops with a message when nothing fits or the chosen model cannot be loaded.
    """
    entries = catalogue.entries()
    names = [e.name for e in entries if e.error is None and accept(e.cls)]
    for e in entries:
        if e.error is not None and report_broken:
            what = Path(e.where).name if e.origin != "yours" else f"your model {e.name} ({e.where})"
            st.warning(f"Skipped {what}: {e.error}", icon=":material/warning:")
    if not names:
        st.error(f"No usable checkpoint for this page in {checkpoints.checkpoint_dir()}.")
        st.stop()
    if st.session_state.get(key) not in names:
        st.session_state[key] = default if default in names else names[0]
    name = st.selectbox(label, names, key=key,
                        help="Models shipped in checkpoints/, those of folders added with ebmviz run --checkpoints, "
                             "and your own (ebmviz run --model); the Models page lists them")
    try:
        return name, load_model(name, shared().device)
    except (checkpoints.CheckpointError, UserModelError) as exc:
        st.error(f"Cannot load this checkpoint — {exc.reason}.")
        st.stop()


def of_kind(kind: str) -> Callable[[type[Model]], bool]:
    """``accept`` for ``model_picker``: models of one kind."""
    return lambda cls: cls.kind == kind


def is_energy(cls: type[Model]) -> bool:
    """``accept`` for ``model_picker``: every model whose ``model(x)`` is an image energy."""
    return cls.is_energy


def sampler_form(defaults: LangevinConfig, prefix: str) -> tuple[LangevinConfig, list[str]]:
    """Sampler settings; returns the config and warnings about risky values.

    Widget keys carry ``prefix``; defaults come from the checkpoint's ``meta["sampler"]`` (a ULA setting). Picking
    MALA starts it from ``mala_start(defaults)``, and ULA again from the checkpoint's: when the defaults change (a
    method or another model was picked) the widgets whose starting value differs start again from the new one.
    """
    k = lambda name: f"{prefix}_{name}"  # noqa: E731
    method_now = st.session_state.get(k("method"), "MALA" if defaults.metropolis else "ULA")
    defaults = mala_start(defaults) if method_now == "MALA" else replace(defaults, metropolis=False)
    # The widgets take their values from session state, set here when the defaults change or Streamlit has
    # dropped a widget's state (its page or view was left): a browser keeps showing, and sends back, a
    # widget's old value when only its ``value`` argument changes.
    before = st.session_state.get(k("sampler_defaults"))
    start, was = _form_values(defaults), _form_values(before) if before is not None else {}
    for name in SAMPLER_WIDGETS:
        moved = start[name] != was.get(name)
        if (moved and not links.from_link(k(name))) or k(name) not in st.session_state:
            st.session_state[k(name)] = start[name]
    st.session_state[k("sampler_defaults")] = defaults
    method = st.radio("Sampler", ["ULA", "MALA"], horizontal=True, key=k("method"),
                      help="ULA: unadjusted Langevin, every step taken. MALA proposes the same step and accepts it "
                           "with the Metropolis–Hastings probability, which makes the chain exact for exp(−E/T); it "
                           "starts from its own step and noise (the model's ULA setting is far too coarse for it).")
    c1, c2 = st.columns(2)
    n_steps = c1.number_input("Steps K", *RANGES["n_steps"], step=16, key=k("n_steps"))
    record = c2.number_input("Record every k steps", *RANGES["record_every"], key=k("record_every"))
    step = c1.number_input("Step size s", *RANGES["step_size"], format="%g", key=k("step_size"))
    noise = c2.number_input("Noise σ", *RANGES["noise_std"], format="%g", key=k("noise_std"))
    if step > 0:
        c2.caption(f"temperature T = σ²/(2s) = {float(noise) ** 2 / (2 * float(step)):.3g}")
    clip_on = c1.checkbox("Clip gradient entries", key=k("clip_on"))
    clip = c2.number_input("± clip", *RANGES["grad_clip"], format="%g", key=k("grad_clip"), disabled=not clip_on)
    clamp_on = st.checkbox("Keep pixels in [−1, 1]", key=k("clamp"),
                           help="ULA clamps each step into the box. MALA reflects its proposal at the box's walls "
                                "and counts the reflection in its accept/reject step, so it stays exact for the "
                                "density restricted to the box")
    warnings = []
    if -(-int(n_steps) // int(record)) > MAX_FRAMES:  # ceil(K / k) frames
        record = -(-int(n_steps) // MAX_FRAMES)
        warnings.append(f"Recording every {record} steps: a run keeps at most {MAX_FRAMES:,} frames.")
    cfg = LangevinConfig(n_steps=int(n_steps), step_size=float(step), noise_std=float(noise),
                         metropolis=method == "MALA", grad_clip=float(clip) if clip_on else None,
                         clamp=(-1.0, 1.0) if clamp_on else None, record_every=int(record))
    if cfg.metropolis and cfg.noise_std == 0:
        warnings.append("MALA needs noise σ > 0; set a noise level.")
    if cfg.grad_clip is not None and cfg.step_size * cfg.grad_clip > 2:
        warnings.append(f"s·clip = {cfg.step_size * cfg.grad_clip:g}: one step can move a pixel "
                        "across the whole range [−1, 1], so chains will jump to saturated images.")
    if cfg.grad_clip is None and cfg.step_size > 100:
        warnings.append(f"Step size {cfg.step_size:g} without gradient clipping: chains may "
                        "diverge (they stop and are reported, the app keeps running).")
    if cfg.clamp is None:
        warnings.append("Without clamping, pixels can leave [−1, 1]; images are shown clipped.")
    return cfg, warnings


def mala_start(defaults: LangevinConfig) -> LangevinConfig:
    """Where a MALA run starts on a page: ``defaults`` (a model's ULA setting) with MALA's own step and noise
    (``ebmviz.sampling.tuning.MALA_START``); a MALA setting is kept as it is."""
    if defaults.metropolis:
        return defaults
    s, sigma = MALA_START
    return replace(defaults, metropolis=True, step_size=s, noise_std=sigma)


def _form_values(defaults: LangevinConfig) -> dict:
    """The sampler form's widget values for ``defaults`` (moved into the form's ranges)."""
    values = {"method": "MALA" if defaults.metropolis else "ULA", "n_steps": defaults.n_steps,
              "record_every": defaults.record_every, "step_size": float(defaults.step_size),
              "noise_std": float(defaults.noise_std), "clip_on": defaults.grad_clip is not None,
              "grad_clip": float(defaults.grad_clip or 0.03), "clamp": defaults.clamp is not None}
    for name, (low, high) in RANGES.items():  # a checkpoint's settings outside the form's ranges start at the edge
        values[name] = _within(values[name], low, high)
    return values


def _within(value, low, high):
    """``value`` moved into [low, high], as the type of ``low`` (``low`` itself when it is not a finite number)."""
    try:
        v = float(value)
    except (TypeError, ValueError):
        return low
    return type(low)(min(max(v, low), high)) if math.isfinite(v) else low


def sampler_fields(prefix: str) -> list[links.Field]:
    """The linked widgets of ``sampler_form(…, prefix)``, with the form's own ranges."""
    k = lambda name: f"{prefix}_{name}"  # noqa: E731
    return [links.choice(k("method"), "sampler", ["ULA", "MALA"]),
            links.integer(k("n_steps"), "steps", *RANGES["n_steps"]),
            links.integer(k("record_every"), "record", *RANGES["record_every"]),
            links.number(k("step_size"), "step", *RANGES["step_size"]),
            links.number(k("noise_std"), "noise", *RANGES["noise_std"]), links.flag(k("clip_on"), "clip_on"),
            links.number(k("grad_clip"), "clip", *RANGES["grad_clip"]), links.flag(k("clamp"), "clamp")]


def over_work_cap(chains: int, steps: int, what: str) -> str | None:
    """A message when ``chains`` × ``steps`` (gradient evaluations of one request) is over ``MAX_RUN_WORK``."""
    if chains * steps <= MAX_RUN_WORK:
        return None
    return (f"{what}: {chains:,} chains × {steps:,} steps is over the cap of {MAX_RUN_WORK:,} gradient evaluations per "
            f"request (at most {MAX_RUN_WORK // max(chains, 1):,} steps for {chains:,} chains); lower the steps or "
            "the chains.")


IMAGE_TYPES = ["png", "jpg", "jpeg", "bmp", "gif", "webp", "tif", "tiff"]


@dataclass(frozen=True)
class Upload:
    """A picture the user uploaded, as the app uses it."""

    image: np.ndarray  # (1, 1, 28, 28) float32 in [-1, 1], white on black
    raw: bytes  # the file's bytes (for a digest)


def image_upload(label: str, key: str, shape: tuple[int, int, int] = (1, 28, 28)) -> Upload | None:
    """A file uploader for one picture, made a (1, C, H, W) image of ``shape`` (MNIST's 1×28×28: a digit); its
    conversions are reported, a file that is not a usable image gets a message (never an exception). None until a
    usable picture is there."""
    f = st.file_uploader(label, key=key, type=IMAGE_TYPES)
    if f is None:
        return None
    raw = f.getvalue()
    try:
        img, notes = image_for_shape(raw, tuple(shape))
    except ImageError as exc:
        st.error(f"Cannot use this file: {exc}")
        return None
    for note in notes:
        st.info(f"Your image was {note}.")
    return Upload(img.numpy(), raw)


def update_equation(cfg: LangevinConfig) -> str:
    """LaTeX of the update with the live values: ULA's step, or MALA's proposal and its accept/reject."""
    g = (rf"\mathrm{{clip}}_{{\pm {_tex(cfg.grad_clip)}}}(\nabla_x E(x_t))" if cfg.grad_clip
         else r"\nabla_x E(x_t)")
    s, noise = _tex(cfg.step_size), _tex(cfg.noise_std)
    step = rf"x_t - {s}\,{g} + {noise}\,\xi_t"
    if cfg.metropolis:
        prop = rf"\mathrm{{reflect}}_{{[-1,1]}}\Big({step}\Big)" if cfg.clamp else step
        return (rf"\begin{{aligned}} x' &= {prop}\\ x_{{t+1}} &= "
                r"\begin{cases} x' & \text{with probability } \min\Big(1,\ "
                r"\dfrac{e^{-E(x')/T}\,q(x_t\mid x')}{e^{-E(x_t)/T}\,q(x'\mid x_t)}\Big)\\ x_t & "
                r"\text{otherwise (rejected)}\end{cases}\end{aligned}")
    if cfg.clamp:
        return rf"x_{{t+1}} = \mathrm{{clamp}}_{{[-1,1]}}\Big({step}\Big)"
    return rf"x_{{t+1}} = {step}"


def _tex(v: float) -> str:
    """A number for LaTeX: 1.25e-06 -> 1.25\\times10^{-6}."""
    text = f"{v:.6g}"
    if "e" not in text:
        return text
    mantissa, exp = text.split("e")
    return rf"{mantissa}\times 10^{{{int(exp)}}}"


def temperature_equation(cfg: LangevinConfig) -> str:
    """LaTeX of the noise's law and the effective temperature with the live values (the line under
    ``update_equation``)."""
    return (rf"\xi_t\sim\mathcal N(0,I),\quad T = \frac{{\sigma^2}}{{2s}} = "
            rf"\frac{{({_tex(cfg.noise_std)})^2}}{{2\cdot {_tex(cfg.step_size)}}} = {_tex(cfg.temperature)}")
