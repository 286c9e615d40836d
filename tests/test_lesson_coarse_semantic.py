"""The coarse-to-fine and semantic-vs-texture pages as lesson stops: each ends with "What to notice" whose numbers are
the run's (recomputed here from the model, the same way), the texture stage's explanation quotes its run, presentation
mode puts the labelled grid beside its trace with captions a projector can show, and the players take the pace."""

import dataclasses
import re

import numpy as np
import pytest

from ebmviz import checkpoints
from ebmviz.app import presentation
from ebmviz.app.player import Player
from ebmviz.models.coarse_to_fine import CascadeConfig, sample_cascade
from ebmviz.models.denoising import texture_only
from tests.test_app import notice, open_page

SCREEN = 1280  # the projector's width (CSS px)
PAD = 24  # presentation mode's side padding of the main block (1.5rem)
GAP = 32  # a "medium" gap between columns (2rem; measured in Chromium at 1280×720)


def blocks(at):
    """Every element and block of the page's main area, in order."""
    out = []

    def walk(node):
        for child in getattr(node, "children", {}).values():
            out.append(child)
            walk(child)

    walk(at.main)
    return out




def g(v: float, digits: int) -> str:
    return f"{v:.{digits}g}"


def side_by_side_columns(at):
    """The columns of the horizontal block that holds the frame's picture beside its plotly trace (None: none)."""
    for blk in blocks(at):
        cols = [c for c in getattr(blk, "children", {}).values() if getattr(c, "type", "") == "column"]
        if len(cols) == 2 and cols[0].get("image") and cols[1].get("plotly_chart"):
            return cols
    return None


@pytest.fixture
def grids(monkeypatch):
    """Every labelled grid the pages draw: (font_px, width in image pixels)."""
    from ebmviz.figures import images

    made, original = [], images.labelled_grid

    def recording(*args, **kwargs):
        out = original(*args, **kwargs)
        made.append((kwargs.get("font_px", 13), out.shape[1]))
        return out

    monkeypatch.setattr(images, "labelled_grid", recording)
    return made


def caption_css_px(font_px: int, image_width: int, cols) -> float:
    """The caption size on a 1280-px screen: a picture is shown at its own width, shrunk to its column's if wider
    (the first of ``cols``)."""
    weights = [c.weight for c in cols]
    column = (SCREEN - 2 * PAD - GAP * (len(cols) - 1)) * weights[0] / sum(weights)
    return font_px * min(1.0, column / image_width)


# ------------------------------------------------------------------------------------------------ coarse to fine
def test_coarse_to_fine_ends_with_what_to_notice_from_its_cascade():
    at = open_page("views/coarse_to_fine.py")
    lines = notice(at)
    # the same cascade, sampled here: the page's settings are the checkpoint's, one frame per step, 16 chains, seed 0
    model = checkpoints.load("coarse_to_fine-mnist")
    shipped = model.draw_config()
    cfg = CascadeConfig(steps=shipped.steps, step_size=shipped.step_size, noise_std=shipped.noise_std,
                        grad_clip=shipped.grad_clip, handoff_noise=shipped.handoff_noise, record_every=1)
    for run in range(2):
        c = sample_cascade(model, 16, 0, cfg)
        start = [float(np.median(t.energy[0])) for t in c.trajectories]
        end = [float(np.median(t.energy[-1])) for t in c.trajectories]
        assert f"from {g(start[0], 3)} to {g(end[0], 3)} in {cfg.steps[0]} steps" in lines[0]
        assert f"from {g(start[1], 3)} to {g(end[1], 3)} at 14×14" in lines[1]
        assert f"from {g(start[2], 3)} to {g(end[2], 3)} at 28×28" in lines[1]
        total = sum(cfg.steps)
        assert f"spent {total} gradient evaluations per chain, {100 * cfg.steps[2] / total:.0f}% of them" in lines[2]
        if run == 0:  # other settings, other numbers: fewer steps at 7×7
            cfg = dataclasses.replace(cfg, steps=(5, *cfg.steps[1:]))
            at.number_input(key="cf_k0").set_value(5).run()
            assert not at.exception
            lines = notice(at)


def test_coarse_to_fine_restoration_notice_follows_its_settings():
    at = open_page("views/coarse_to_fine.py", cf_view="Restoration")
    first = notice(at)
    at.number_input(key="cf_rsteps").set_value(5).run()
    assert not at.exception
    lines = notice(at)
    assert lines != first and "in 5 steps" in lines[0] and "in 5 steps" in lines[1]
    captions = " ".join(c for im in at.image for c in im.captions)
    mse = [float(m) for m in re.findall(r"MSE (\d\.\d{4}) → (\d\.\d{4})", captions)[0]]
    assert f"from {mse[0]:.4f} to {mse[1]:.4f}" in lines[0]  # the denoising row's caption and the notice agree


def test_coarse_to_fine_presentation_puts_big_labelled_tiles_beside_the_trace(grids):
    at = open_page("views/coarse_to_fine.py")
    assert side_by_side_columns(at) is None and not grids  # off: the page as before, tiles without captions
    assert at.expander == [] or all(e.label != "Cascade settings" for e in at.expander)
    grids.clear()
    at.session_state["present"] = True
    at.run()
    assert not at.exception
    cols = side_by_side_columns(at)
    assert cols is not None, "the grid and its energy trace are not side by side"
    assert grids and {f for f, _ in grids} == {presentation.PRESENT_FONT_PX}
    font, width = grids[-1]
    assert caption_css_px(font, width, cols) >= 16
    assert any(e.label == "Cascade settings" for e in at.expander)  # the settings folded away
    assert cols[0].image[0].proto.imgs[0].caption == "16 chains, each with its energy E0"


@pytest.mark.parametrize("page, key, pace", [("views/coarse_to_fine.py", "cf_pace", 0.5),
                                             ("views/semantic_texture.py", "st_pace", 0.25)])
def test_pace_reaches_the_player(monkeypatch, page, key, pace):
    seen = []
    show = Player.show

    def recording(self, draw, *args, **kwargs):
        seen.append(kwargs.get("frame_seconds"))
        return show(self, draw, *args, **kwargs)

    monkeypatch.setattr(Player, "show", recording)
    at = open_page(page)
    at.select_slider(key=key).set_value(pace).run()
    assert not at.exception and seen[-1] == pace


# ------------------------------------------------------------------------------------------------ semantic vs texture
@pytest.fixture(scope="module")
def two_stage():
    """The page's default run, drawn here: the checkpoint's settings, 16 chains, seed 0."""
    model = checkpoints.load("denoising-mnist")
    cfg = model.draw_config()
    return model, cfg, model.draw(16, 0, cfg), texture_only(model, 16, 0, cfg)


def test_semantic_texture_explains_the_texture_stage_with_its_run(two_stage):
    at = open_page("views/semantic_texture.py")
    model, cfg, r, only = two_stage
    x0, xt = r.semantic.final, r.texture.final
    delta = xt - x0
    size = np.abs(delta)
    strokes = x0 > 0
    d = x0[0].size
    uc0, uct = float(np.median(r.texture.energy[0])), float(np.median(r.texture.energy[-1]))
    text = next(m.value for m in at.markdown if m.value.startswith("**What you are looking at.**"))
    assert f"changed a pixel by **{size.mean():.4f}**" in text
    assert f"about {size.mean() * 255 / 2:.1f} of 255 grey levels" in text
    assert f"a pixel changed by {size[strokes].mean():.4f}, {delta[strokes].mean():+.4f}" in text
    assert f"by {size[~strokes].mean():.4f} on the background" in text
    assert f"from **{uc0:.4g}** to **{uct:.4g}**" in text
    assert f"d = {d} of them" in text and f"d·T/2 = **{d / 2:g}**" in text
    assert f"{d / 2 / uc0:.1f}× below d/2" in text and f"U_c is {uct / (d / 2):.2f}× d/2" in text
    assert f"{cfg.t_steps} pixel steps and σ_t from {cfg.sigma:g} to {cfg.sigma_end:g}" in text
    # the amplified difference image and its gain
    gain = 1 / np.percentile(size, 99)
    caps = [c for im in at.image for c in im.captions]
    assert any(c.startswith(f"the change x_T − x⁰, amplified ×{gain:.0f}") for c in caps), caps


def test_semantic_texture_ends_with_what_to_notice_from_its_run(two_stage):
    at = open_page("views/semantic_texture.py")
    lines = notice(at)
    model, cfg, r, only = two_stage
    us0, usk = float(np.median(r.semantic.energy[0])), float(np.median(r.semantic.energy[-1]))
    uc0, uct = float(np.median(r.texture.energy[0])), float(np.median(r.texture.energy[-1]))
    o0, ot = float(np.median(only.energy[0])), float(np.median(only.energy[-1]))
    d = r.semantic.final[0].size
    assert f"in {cfg.k_steps} latent steps the median U_s" in lines[0] and f"from {us0:.4g} to {usk:.4g}" in lines[0]
    assert f"from {uc0:.4g} to {uct:.4g}, {uct / (d / 2):.2f}× d/2 = {d / 2:g}" in lines[1]
    assert f"by {np.abs(r.texture.final - r.semantic.final).mean():.4f} on average" in lines[1]
    assert f"the same {cfg.t_steps} pixel steps took U_c from {o0:.4g} to {ot:.4g}" in lines[2]
    table = at.dataframe[0].value["confident digits (> 90%)"].tolist()  # the table and the notice agree
    assert f"reads {table[0]} of the semantic images" in lines[0] and f"and {table[2]} of those chains" in lines[2]


def test_semantic_texture_other_settings_change_the_explanation(two_stage):
    model, cfg, _, _ = two_stage
    at = open_page("views/semantic_texture.py", **{"st_denoising-mnist_t": 3, "st_denoising-mnist_n": 4})
    r = model.draw(4, 0, dataclasses.replace(cfg, t_steps=3))
    uc0, uct = float(np.median(r.texture.energy[0])), float(np.median(r.texture.energy[-1]))
    text = next(m.value for m in at.markdown if m.value.startswith("**What you are looking at.**"))
    assert f"to **{uct:.4g}**" in text and f"from **{uc0:.4g}**" in text
    assert "3 pixel steps" in text and "(the checkpoint's shipped settings)" not in text
    assert "over the 4 chains" in text


def test_semantic_texture_presentation_from_a_link(grids):
    at = open_page("views/semantic_texture.py")
    assert side_by_side_columns(at) is None and not grids
    at = open_page("views/semantic_texture.py", params={"present": "1"})
    assert at.session_state["present"]
    cols = side_by_side_columns(at)
    assert cols is not None, "the grids and their energy trace are not side by side"
    fonts = {f for f, _ in grids}
    assert fonts == {presentation.PRESENT_FONT_PX}
    # two grids, the two-stage and the texture-only chains, side by side in one picture 24 px apart
    width = sum(w for _, w in grids[-2:]) + 24
    assert caption_css_px(presentation.PRESENT_FONT_PX, width, cols) >= 16
    assert all(e.label != "Export" for e in at.expander)  # the export panel is left out
