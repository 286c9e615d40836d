"""AppTest: the divergence-triangle, EBGAN and learning-dynamics pages end with "What to notice" whose lines carry the
numbers of the run on screen (recomputed here the same way), the triangle's refinement and noise-start numbers match
a run made here, and presentation mode changes the grids' captions and the live player's layout."""

import json

import numpy as np
import pytest
import torch
from PIL import ImageFont

from ebmviz import checkpoints
from ebmviz.analysis.learning_dynamics import Curves, collapse_onset
from ebmviz.app.presentation import GRID_FONT_PX, PRESENT_FONT_PX
from ebmviz.data import load_dataset
from ebmviz.figures import images
from ebmviz.models.ebgan import pulling_away, reconstruction_energy
from ebmviz.sampling import LangevinConfig, langevin
from ebmviz.sampling.starts import make_starts
from tests.test_app import notice, open_page

N_REFINE = 16  # the triangle page's refinement and noise-start chains
SEED = 1  # not the default seed: a number typed into a page would match the default run's, not this one's




@pytest.fixture
def grids(monkeypatch):
    """Every labelled_grid the page draws: (labels, scale, font_px), through the real function."""
    calls, real = [], images.labelled_grid

    def spy(imgs, labels, ncol=8, scale=3, highlight=None, font_px=13):
        calls.append((list(labels), scale, font_px))
        return real(imgs, labels, ncol=ncol, scale=scale, highlight=highlight, font_px=font_px)

    monkeypatch.setattr(images, "labelled_grid", spy)
    return calls


def fitted_font(label: str, tile_px: int, font_px: int) -> int:
    """The size labelled_grid sets ``label`` at: ``font_px``, or smaller until it fits its tile."""
    size = font_px
    while size > 6 and ImageFont.load_default(size=size).getlength(label) > tile_px:
        size -= 1
    return size


def test_triangle_refinement_shows_its_change_and_why_noise_stays_noise():
    at = open_page("views/triangle.py", seed=SEED)
    at.segmented_control(key="tri_view").set_value("Refinement").run()
    assert not at.exception
    model = checkpoints.load("triangle-mnist")
    base = model.draw_config()
    k, s, clip = at.slider(key="tri_k").value, at.number_input(key="tri_s").value, at.number_input(key="tri_clip").value
    cfg = LangevinConfig(n_steps=k, step_size=s, noise_std=base.noise_std, grad_clip=clip, record_every=max(1, k))
    r = model.draw(N_REFINE, SEED, cfg)
    delta = np.abs(r.final - r.generated)
    body = " ".join(m.value for m in at.markdown)
    assert f"**{delta.mean():.4f}** on average and at most **{delta.max():.3f}**" in body
    stroke = r.generated > 0
    assert f"**{100 * delta[stroke].sum() / delta.sum():.0f}%** of it falls on the strokes" in body
    gain = 1 / delta.max()
    assert any(f"the change after − before, ×{gain:.1f}" in c for im in at.image for c in im.captions)
    # the same noise, the same sampler: how far K steps move it, and how far it is from a digit
    x0 = make_starts("noise", N_REFINE, SEED)
    short = langevin(model, x0, cfg, seed=SEED)
    moved = float(np.abs(short.final - x0.numpy()).mean())
    digits = np.asarray(load_dataset("mnist", "test")[0][:1000]).reshape(1000, -1)
    near = float(np.mean([np.abs(x.reshape(1, -1) - digits).mean(1).min() for x in x0.numpy()]))
    assert f"move a noise pixel by **{moved:.3f}** on average" in body
    assert f"K·s·clip = **{k * s * clip:.3g}**" in body and f"**{near:.2f}** per pixel" in body
    lines = notice(at)
    assert f"Refinement moved each pixel by {delta.mean():.4f} on average (at most {delta.max():.3f}" in lines[0]
    e0, e1 = np.median(r.refinement.energy[0]), np.median(r.refinement.energy[-1])
    assert f"from {e0:.2f} to {e1:.2f}" in lines[1]
    assert f"From noise, {k} steps move pixels by {moved:.3f}" in lines[2] and f"{near:.2f}" in lines[2]


def test_triangle_generator_grids_in_presentation_mode_have_large_captions(grids):
    at = open_page("views/triangle.py")
    at.segmented_control(key="tri_view").set_value("Generator").run()
    assert not at.exception
    plain = [font for _, _, font in grids]
    assert plain and set(plain) == {GRID_FONT_PX}
    assert not any(e.label.startswith("How typical") for e in at.expander)  # the histogram is on the page
    grids.clear()
    at = open_page("views/triangle.py", present=True)
    at.segmented_control(key="tri_view").set_value("Generator").run()
    assert not at.exception
    assert {font for _, _, font in grids} == {PRESENT_FONT_PX}
    priors = [(labels, scale) for labels, scale, _ in grids if labels[0][0].isdigit()]  # "3 100% E-249"
    assert len(priors) == 2
    for labels, scale in priors:  # set at ≥ 20 image px in a grid shown at about its own width (580 px)
        assert min(fitted_font(label, 28 * scale, PRESENT_FONT_PX) for label in labels) >= 20, labels
    assert any(e.label.startswith("How typical") for e in at.expander)  # … folded away


def test_ebgan_samples_notice_reads_the_samples_on_screen():
    at = open_page("views/ebgan.py", seed=SEED)
    n = at.slider(key="ebgan_n").value
    model = checkpoints.load("ebgan-mnist")
    with torch.no_grad():
        x = model.generate(n, SEED)
        recon, codes = model.discriminator(x)
        energy = reconstruction_energy(x, recon).numpy()
        pt = float(pulling_away(codes))
    margin = float(model.meta["margin"])
    lines = notice(at)
    assert (f"These {n} samples have a mean energy D(G(z)) of {energy.mean():.4f}; "
            f"{100 * (energy >= margin).mean():.0f}% of them are at or above the margin m = {margin:g}") in lines[0]
    assert f"f_PT = {pt:.3f}" in lines[2]


def test_ebgan_grids_in_presentation_mode_are_set_at_the_projector_size(grids):
    at = open_page("views/ebgan.py")
    assert {font for _, _, font in grids} == {GRID_FONT_PX}
    grids.clear()
    at = open_page("views/ebgan.py", present=True)
    assert not at.exception
    ((labels, scale, font),) = grids
    assert font == PRESENT_FONT_PX
    assert min(fitted_font(label, 28 * scale, font) for label in labels) >= 20, labels
    # the notation, the checkpoint's training and the secondary panel folded
    assert [e.label for e in at.expander] == ["In the paper's notation", "This checkpoint's training",
                                             "The generator over training"]


def test_learning_dynamics_full_set_notice_reads_the_shipped_curves():
    at = open_page("views/learning_dynamics.py")
    it = at.slider(key="ld_it_full").value
    lines = notice(at)
    for flow, line in zip(("kl", "jko"), lines, strict=False):
        meta = checkpoints.read_meta(checkpoints.resolve(f"frame_{flow}-mnist"))
        curves, last = Curves.from_history(meta["history"]), min(it, meta["iterations"])  # a run that ended earlier
        onset = collapse_onset(curves)
        assert f"gap {curves.row_at(it)['gap']:.3g} at iteration {last:,}" in line, line
        assert (f"collapsed from iteration {onset:,}" if onset is not None else "it held for all") in line


def test_learning_dynamics_live_player_paces_and_fits_a_projector():
    at = open_page("views/learning_dynamics.py")
    at.segmented_control(key="ld_view").set_value("Train live").run()
    assert not at.exception
    assert at.select_slider(key="ld_pace").options == ["0.12 s per frame", "0.25 s per frame", "0.5 s per frame"]
    plain = json.loads(at.get("plotly_chart")[-1].proto.spec)["layout"]
    assert [e.label for e in at.expander] == []
    reference = Curves.from_history(checkpoints.read_meta(checkpoints.resolve("frame_kl5-mnist"))["history"])
    assert f"had a gap of {reference.row_at(1)['gap']:.3g} at iteration 1" in notice(at)[2]
    at = open_page("views/learning_dynamics.py", present=True)
    at.segmented_control(key="ld_view").set_value("Train live").run()
    assert not at.exception
    assert [e.label for e in at.expander] == ["In the papers' notation", "Settings"]
    present = json.loads(at.get("plotly_chart")[-1].proto.spec)["layout"]
    assert (plain["height"], present["height"]) == (300, 360)
    assert present["yaxis"]["tickfont"]["size"] == present["xaxis"]["title"]["font"]["size"] == 16
    assert "tickfont" not in plain["yaxis"]
    at.button(key="ld_step").click().run()  # one frame trained: the notice reads the run
    assert not at.exception
    assert "This run trained 5 of 300 iterations" in notice(at)[0]
