"""The sampler lab's session state, its two live runs as one recording, its forms and cached pictures."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import streamlit as st

from ebmviz.analysis.sampler_lab import KINDS, SamplerChoice, judge as judge, target_temperature as target_temperature
from ebmviz.app import links
from ebmviz.app.player import PlayerState
from ebmviz.app.state import Slot
from ebmviz.export import gif_picks as gif_picks, trajectory_arrays as trajectory_arrays
from ebmviz.figures.sampler_lab import density_image
from ebmviz.sampling import LiveRun
from ebmviz.sampling.diagnostics import autocorrelation as autocorrelation
from ebmviz.sampling.toy2d import LAB_ENERGIES, Toy, custom

FRAME_SIZE = 360  # pixels per side of one sampler's picture
DEFAULT_COMPONENTS = ((-2.0, 0.0, 0.5, 1.0), (2.0, 0.0, 0.5, 1.0), (0.0, 2.5, 0.3, 0.5))
MAX_PARTICLES, MAX_STEPS, MAX_LEAPFROG = 2000, 3000, 100
MAX_WORK = 3_000_000  # particles × steps × gradients per step, per sampler: about a minute of playback on 2 cores


@dataclass(frozen=True)
class LabSpec:
    """Everything that determines the two runs; a new spec means new runs."""

    energy: str  # a key of LAB_ENERGIES or "custom"
    components: tuple[tuple[float, float, float, float], ...]  # the custom mixture's (x, y, std, weight)
    n_particles: int
    n_steps: int
    start: str  # "uniform" or "point"
    seed: int
    a: SamplerChoice
    b: SamplerChoice

    def toy(self) -> Toy:
        return custom(self.components) if self.energy == "custom" else LAB_ENERGIES[self.energy]

    def problems(self) -> list[str]:
        """Why these settings cannot run, in words (empty when they can)."""
        out = []
        for side, ch in (("A", self.a), ("B", self.b)):
            try:
                ch.config(self.n_steps).validate()
            except ValueError as exc:
                out.append(f"Sampler {side}: {exc}")
        per_step = max({"HMC": ch.n_leapfrog, "JKO": ch.inner_steps}.get(ch.kind, 1) for ch in (self.a, self.b))
        if self.n_particles * self.n_steps * per_step > MAX_WORK:
            most = MAX_WORK // (self.n_particles * per_step)
            out.append(f"{self.n_particles} particles × {self.n_steps} steps"
                       f"{f' × {per_step} gradients per step' if per_step > 1 else ''} is over the lab's cap of "
                       f"{MAX_WORK:,} gradient evaluations per sampler: with {self.n_particles} particles, at most "
                       f"{most:,} steps.")
        return out


class LabState(PlayerState):
    spec = Slot(None)  # the LabSpec of ``runs``
    runs = Slot(None)  # (LiveRun, LiveRun): samplers A and B

    def reset(self, spec: LabSpec) -> None:
        toy = spec.toy()
        x0 = toy.starts(spec.n_particles, spec.seed, spec.start)
        self.spec = spec
        self.runs = tuple(LiveRun(toy.energy, x0, ch.config(spec.n_steps, record_paths=ch.kind == "HMC"), spec.seed,
                                  frame_format="float32") for ch in (spec.a, spec.b))
        self.rewind()


@dataclass(frozen=True)
class PairRecording:
    """Both runs as one timeline: display frame i shows step i·stride (or the last step) of each."""

    runs: tuple[LiveRun, LiveRun]
    stride: int

    def __len__(self) -> int:
        steps = min(r.t for r in self.runs)
        return math.ceil(steps / self.stride) + 1

    @property
    def done(self) -> bool:
        return all(r.done for r in self.runs)

    def advance(self, max_seconds: float | None = None) -> None:
        for r in self.runs:
            r.advance(max_steps=self.stride)

    def step_at(self, index: int) -> int:
        return min(index * self.stride, min(r.t for r in self.runs))


@st.cache_data(max_entries=16, show_spinner=False)
def grid_and_background(energy: str, components: tuple, temperature: float):
    """The exact grid density at T and its picture; cached by the energy's name, components and T."""
    toy = custom(components) if energy == "custom" else LAB_ENERGIES[energy]
    grid = toy.grid(temperature=temperature)
    return grid, density_image(grid, FRAME_SIZE)


def side_form(side: str, toy: Toy, prefix: str, default_kind: str) -> SamplerChoice:
    """One sampler's widgets (keys ``<prefix>_<side>_…``); defaults follow the energy when it changes."""
    k = lambda name: f"{prefix}_{side}_{name}"  # noqa: E731
    kind = st.selectbox("Sampler", KINDS, index=KINDS.index(default_kind), key=k("kind"),
                        help="ULA: unadjusted Langevin. MALA: Langevin with a Metropolis–Hastings correction. HMC: "
                             "Hamiltonian Monte Carlo. Annealed: ULA down a ladder of temperatures to T. JKO: "
                             "proximal (implicit) Langevin steps, ebmviz's reconstruction of wFRAME's particle step.")
    base = SamplerChoice.default(kind, toy)
    marker = (toy.name, kind)  # not the box: editing a custom mixture keeps the step the user set
    if st.session_state.get(k("defaults_for")) != marker:  # a new energy or kind: its own step size
        if st.session_state.get(k("defaults_for")) is not None or k("step") not in st.session_state:
            st.session_state[k("step")] = float(base.step_size)
        st.session_state[k("defaults_for")] = marker
    c1, c2 = st.columns(2)
    step = c1.number_input({"HMC": "Step ε", "JKO": "Time step τ"}.get(kind, "Step size s"), min_value=1e-6,
                           max_value=100.0,
                           format="%g", key=k("step"))
    temp = c2.number_input("Temperature T", min_value=0.05, max_value=20.0, value=1.0, format="%g", key=k("temp"),
                           help="The target is exp(−E/T); T = 1 is the energy's own density")
    if kind in ("ULA", "MALA"):
        c2.caption(f"noise σ = √(2sT) = {math.sqrt(2 * float(step) * float(temp)):.3g}")
    n_leap, t_start, inner = 3, 10.0, 3
    if kind == "HMC":
        n_leap = c1.number_input("Leapfrog steps L", 1, MAX_LEAPFROG, 3, key=k("leapfrog"))
    if kind == "Annealed":
        t_start = c1.number_input("Start temperature T₀", min_value=0.05, max_value=100.0, value=10.0, format="%g",
                                  key=k("t_start"))
    if kind == "JKO":
        inner = c1.number_input("Inner steps m", 1, 50, 3, key=k("inner"),
                                help="Gradient steps toward the proximal point per update (each one a gradient)")
    return SamplerChoice(kind=kind, step_size=float(step), temperature=float(temp), n_leapfrog=int(n_leap),
                         t_start=float(t_start), inner_steps=int(inner))


def sampler_link_fields(prefix: str, side: str) -> list[links.Field]:
    """The linked widgets of ``side_form(side, …, prefix)``."""
    k = lambda name: f"{prefix}_{side}_{name}"  # noqa: E731
    return [links.choice(k("kind"), f"{side}_sampler", KINDS), links.number(k("step"), f"{side}_step", 1e-6, 100.0),
            links.number(k("temp"), f"{side}_T", 0.05, 20.0),
            links.integer(k("leapfrog"), f"{side}_L", 1, MAX_LEAPFROG),
            links.number(k("t_start"), f"{side}_T0", 0.05, 100.0), links.integer(k("inner"), f"{side}_m", 1, 50)]


MAX_COMPONENTS = 12


def parse_components(text: str) -> tuple[tuple[float, float, float, float], ...]:
    """A link's mixture, "x,y,std,weight;…" -> rows; raises ValueError naming what is wrong."""
    rows = []
    for part in text.split(";")[: MAX_COMPONENTS + 1]:
        try:
            vals = tuple(float(v) for v in part.split(","))
        except ValueError:
            raise ValueError("each component is four numbers x,y,std,weight") from None
        if len(vals) != 4 or not all(np.isfinite(vals)) or not (0.05 <= vals[2] <= 5 and 0 <= vals[3] <= 100) \
                or max(abs(vals[0]), abs(vals[1])) > 20:
            raise ValueError("each component is x,y in [−20, 20], std in [0.05, 5], weight in [0, 100]")
        rows.append(vals)
    if len(rows) > MAX_COMPONENTS or sum(r[3] for r in rows) <= 0:
        raise ValueError(f"1 … {MAX_COMPONENTS} components with some positive weight")
    return tuple(rows)


def components_field(prefix: str) -> links.Field:
    return links.Field(f"{prefix}_mix", "mix", parse_components,
                       lambda rows: ";".join(",".join(f"{v:g}" for v in r) for r in rows))


def components_editor(prefix: str) -> tuple[tuple[float, float, float, float], ...]:
    """The custom mixture's components, one row each (x, y, std, weight); rows with bad values are dropped
    with a message, and at least one valid row is kept. Starts from a link's mixture when there is one."""
    if links.from_link(f"{prefix}_mix"):
        st.session_state[f"{prefix}_mix_start"] = st.session_state[f"{prefix}_mix"]
        st.session_state.pop(f"{prefix}_components", None)  # the editor starts again from the link's rows
    initial = st.session_state.get(f"{prefix}_mix_start", DEFAULT_COMPONENTS)
    rows = st.data_editor(
        [dict(zip(("x", "y", "std", "weight"), c, strict=True)) for c in initial],
        num_rows="dynamic", key=f"{prefix}_components", width="stretch",
        column_config={"x": st.column_config.NumberColumn(min_value=-20.0, max_value=20.0),
                       "y": st.column_config.NumberColumn(min_value=-20.0, max_value=20.0),
                       "std": st.column_config.NumberColumn(min_value=0.05, max_value=5.0),
                       "weight": st.column_config.NumberColumn(min_value=0.0, max_value=100.0)})
    good, dropped = [], 0
    for r in rows:
        vals = [r.get(c) for c in ("x", "y", "std", "weight")]
        if all(isinstance(v, int | float) and np.isfinite(v) for v in vals) and vals[2] > 0 and vals[3] >= 0:
            good.append(tuple(float(v) for v in vals))
        else:
            dropped += 1
    if dropped:
        st.warning(f"{dropped} row(s) left out: each component needs x, y, a std > 0 and a weight ≥ 0.")
    if not good or sum(c[3] for c in good) <= 0:
        st.warning("The mixture needs at least one component with a positive weight; using the example.")
        good = list(DEFAULT_COMPONENTS)
    st.session_state[f"{prefix}_mix"] = tuple(good[:MAX_COMPONENTS])
    return st.session_state[f"{prefix}_mix"]


def equation(choice: SamplerChoice) -> str:
    """LaTeX of one sampler's update with its live values."""
    s, T = choice.step_size, choice.temperature
    if choice.kind == "HMC":
        return (rf"\begin{{aligned}}H(x,p)&=\frac{{E(x)}}{{{T:g}}}+\tfrac12\|p\|^2,\quad p\sim\mathcal N(0,I)\\"
                rf"&{choice.n_leapfrog}\ \text{{leapfrog steps of }}\varepsilon={s:g}\ \text{{to }}(x',p')\\"
                r"&\text{accept: }\min\!\big(1,e^{H(x,p)-H(x',p')}\big)\end{aligned}")
    if choice.kind == "JKO":
        return (rf"\begin{{aligned}}y&\leftarrow y-\eta\Big(\frac{{\nabla E(y)}}{{{T:g}}}"
                rf"+\frac{{y-x_t}}{{{s:g}}}\Big)\\"
                rf"&{choice.inner_steps}\ \text{{times from }}y=x_t,\ \eta=\tau/2\\"
                rf"x_{{t+1}}&=y+\sqrt{{2\cdot{s:g}\cdot{T:g}}}\,\xi_t\end{{aligned}}")
    if choice.kind == "Annealed":
        return (rf"\begin{{aligned}}x_{{t+1}}&=x_t-{s:g}\,\nabla E(x_t)+\sqrt{{2\cdot{s:g}\cdot T_t}}\,\xi_t\\"
                rf"T_t&:\ {max(choice.t_start, T):g}\searrow{T:g}\ \text{{geometrically, then held}}\end{{aligned}}")
    sigma = math.sqrt(2 * s * T)
    eq = rf"x'=x_t-{s:g}\,\nabla E(x_t)+{sigma:.3g}\,\xi_t,\quad T=\frac{{\sigma^2}}{{2s}}={T:g}"
    if choice.kind == "MALA":
        eq = (r"\begin{aligned}" + eq + r"\\ x_{t+1}&=x'\ \text{with probability}\ \min\!\Big(1,"
              r"\frac{e^{-E(x')/T}\,q(x_t\mid x')}{e^{-E(x_t)/T}\,q(x'\mid x_t)}\Big)\end{aligned}")
        eq = eq.replace("x'=", "x'&=", 1)
    else:
        eq = eq.replace("x'=", "x_{t+1}=")
    return eq


def notice_lines(step: int, kinds: list[str], judged: list) -> list[str]:
    """Three "what to notice" lines from the lab's diagnostics at ``step`` (``judged``: each sampler's
    ``judge`` result, empty before step 8)."""
    if not judged:
        return ["Press **Play** (or Step) and let the particles run: the numbers of this run appear here from "
                "step 8 on.",
                "ULA takes every step it proposes; MALA and HMC reject some (red dots) — watch which sampler's "
                "cloud matches the heat map.",
                "Lower the step size s and see the unadjusted sampler's blobs shrink towards the exact ones."]
    names = [f"{side} ({kind})" for side, kind in zip("AB", kinds, strict=True)]
    kl = [j.distance["binned KL"] for j in judged]
    closer = int(np.argmin(kl))
    lines = [f"At step {step} the binned KL to the exact density is {kl[0]:.3f} for {names[0]} and {kl[1]:.3f} for "
             f"{names[1]}: {names[closer]} is the closer (0 only for exact draws)."]
    adjusted = [(n, j.acceptance) for n, j in zip(names, judged, strict=True) if j.acceptance is not None]
    if adjusted:
        lines.append("; ".join(f"{n} accepted {100 * a:.0f}% of its moves" for n, a in adjusted)
                     + ": each rejection keeps a particle where it was, and that is what removes the bias.")
    else:
        lines.append("Neither sampler has an accept/reject step: both take every move, bias included.")
    ess = [j.ess_per_grad for j in judged]
    lines.append(f"ESS per gradient: {names[0]} {ess[0]:.2e}, {names[1]} {ess[1]:.2e} — how much independent "
                 "information each gradient evaluation buys. Next: the same samplers on 784-pixel digits.")
    return lines
