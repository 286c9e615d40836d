"""Shared widgets: the sidebar (checkpoint, seed, device) and the sampler settings form."""

from __future__ import annotations

import streamlit as st

from ebmviz import checkpoints
from ebmviz.app.cache import load_model
from ebmviz.device import available
from ebmviz.sampling import LangevinConfig

CKPT, SEED, DEVICE = "ckpt", "seed", "device"  # shared session keys, read by every page
DEFAULT_CHECKPOINT = "shortrun-mnist"
NON_GENERATIVE = {"evaluator"}


def sidebar() -> str | None:
    """Draw the shared sidebar; return the chosen generative checkpoint name (None if none)."""
    infos = checkpoints.list_checkpoints()
    usable = [i.name for i in infos if i.error is None and i.kind not in NON_GENERATIVE]
    broken = [i for i in infos if i.error is not None]
    with st.sidebar:
        st.subheader("Model")
        if not usable:
            st.error(f"No usable checkpoint in {checkpoints.checkpoint_dir()}.")
            name = None
        else:
            if st.session_state.get(CKPT) not in usable:
                st.session_state[CKPT] = DEFAULT_CHECKPOINT if DEFAULT_CHECKPOINT in usable else usable[0]
            name = st.selectbox("Checkpoint", usable, key=CKPT,
                                help="Energy models shipped in checkpoints/ (or $EBMVIZ_CHECKPOINT_DIR)")
        for info in broken:
            st.warning(f"Skipped {info.path.name}: {info.error}", icon=":material/warning:")
        st.number_input("Seed", min_value=0, max_value=2**31 - 1, value=0, step=1, key=SEED,
                        help="Same seed and settings give the same chains")
        devices = available()
        st.selectbox("Device", devices, key=DEVICE,
                     help="cpu always works; cuda/mps appear when this machine has them")
    return name


def model_of_kind(kind: str, label: str, key: str):
    """Checkpoint picker for a page built around one model kind; returns (name, loaded model).

    Stops the page with a message when no checkpoint of ``kind`` exists or the chosen one is unusable.
    """
    names = [i.name for i in checkpoints.list_checkpoints() if i.kind == kind]
    if not names:
        st.error(f"No {kind} checkpoint in {checkpoints.checkpoint_dir()}: train one with "
                 f"`python -m training {kind}`.")
        st.stop()
    name = st.selectbox(label, names, key=key)
    try:
        return name, load_model(name)
    except checkpoints.CheckpointError as exc:
        st.error(f"Cannot load this checkpoint — {exc.reason}.")
        st.stop()


def sampler_form(defaults: LangevinConfig, prefix: str) -> tuple[LangevinConfig, list[str]]:
    """Sampler settings; returns the config and warnings about risky values.

    Widget keys carry ``prefix``; defaults come from the checkpoint's ``meta["sampler"]``.
    """
    k = lambda name: f"{prefix}_{name}"  # noqa: E731
    kind = st.radio("Sampler", ["ULA", "MALA"], horizontal=True, key=k("kind"),
                    help="ULA: unadjusted Langevin. MALA adds a Metropolis–Hastings accept/reject "
                         "that makes the chain exact for exp(−E/T).")
    c1, c2 = st.columns(2)
    n_steps = c1.number_input("Steps K", 1, 20000, defaults.n_steps, step=16, key=k("n_steps"))
    record = c2.number_input("Record every k steps", 1, 1000, defaults.record_every,
                             key=k("record_every"))
    step = c1.number_input("Step size s", min_value=1e-8, max_value=1e6,
                           value=float(defaults.step_size), format="%g", key=k("step_size"))
    noise = c2.number_input("Noise σ", min_value=0.0, max_value=100.0,
                            value=float(defaults.noise_std), format="%g", key=k("noise_std"))
    clip_on = c1.checkbox("Clip gradient entries", defaults.grad_clip is not None, key=k("clip_on"))
    clip = c2.number_input("± clip", min_value=1e-6, max_value=1e6,
                           value=float(defaults.grad_clip or 0.03), format="%g",
                           key=k("grad_clip"), disabled=not clip_on)
    clamp_on = st.checkbox("Clamp pixels to [−1, 1]", defaults.clamp is not None, key=k("clamp"))
    cfg = LangevinConfig(n_steps=int(n_steps), step_size=float(step), noise_std=float(noise),
                         metropolis=kind == "MALA", grad_clip=float(clip) if clip_on else None,
                         clamp=(-1.0, 1.0) if clamp_on else None, record_every=int(record))
    warnings = []
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


def update_equation(cfg: LangevinConfig) -> str:
    """LaTeX of the update with the live values and the effective temperature."""
    g = (rf"\mathrm{{clip}}_{{\pm {cfg.grad_clip:g}}}(\nabla_x E(x_t))" if cfg.grad_clip
         else r"\nabla_x E(x_t)")
    eq = rf"x_{{t+1}} = x_t - {cfg.step_size:g}\,{g} + {cfg.noise_std:g}\,\xi_t"
    if cfg.clamp:
        eq = (rf"x_{{t+1}} = \mathrm{{clamp}}_{{[-1,1]}}\Big(x_t - {cfg.step_size:g}\,{g}"
              rf" + {cfg.noise_std:g}\,\xi_t\Big)")
    return eq + r",\quad \xi_t\sim\mathcal N(0,I)"


def _tex(v: float) -> str:
    """A number for LaTeX: 1.25e-06 -> 1.25\\times10^{-6}."""
    text = f"{v:.3g}"
    if "e" not in text:
        return text
    mantissa, exp = text.split("e")
    return rf"{mantissa}\times 10^{{{int(exp)}}}"


def temperature_equation(cfg: LangevinConfig) -> str:
    """LaTeX of the effective temperature with the live values."""
    return (rf"T = \frac{{\sigma^2}}{{2s}} = \frac{{({_tex(cfg.noise_std)})^2}}{{2\cdot {_tex(cfg.step_size)}}}"
            rf" = {_tex(cfg.temperature)}")
