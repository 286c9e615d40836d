"""The anomaly page on the user's own models (``ebmviz run --model``): a 3×32×32 energy is measured live on its own
images against sets made in its shape (Fashion-MNIST resized and coloured, noise, corruptions of its images), a model
without ``--data`` gets a message instead, and the sets' making takes any shape."""

import math

import numpy as np
import torch
import torch.nn.functional as F

from ebmviz import catalogue
from ebmviz.analysis.anomaly import (
    SETS,
    SETS_SEED,
    USER_HELD_OUT,
    auroc_row,
    edit,
    fit,
    make_sets,
    pick_inside,
    set_names,
)
from ebmviz.data import DataError, load_dataset
from ebmviz.image_sets import load_images
from ebmviz.user_model import UserSpec
from tests.test_app import open_page, texts
from tests.user_models import GRAY, RGB, serve

PAGE = "views/anomaly.py"
NO_DATA = UserSpec(RGB.target, RGB.weights, None, "rgb-nodata")  # the RGB energy started without --data

# The page and this test score the same images with the same model object and batches in one process, so their
# floats agree exactly; what may differ is only how an AUROC's sums are rounded. One pair of 300 × 300 ordered the
# other way moves an AUROC by 1/90,000 ≈ 1.1e-5: half of that lets no flipped pair through.
SAME_PROCESS_ABS = 0.5 / USER_HELD_OUT**2


def fashion_or_stand_in() -> torch.Tensor:
    """Fashion-MNIST's test images (N, 1, 28, 28) in [−1, 1]; where this machine lacks them, MNIST's test digits,
    which come in the same format and go through the same resizing."""
    try:
        return load_dataset("fashion-mnist", "test")[0]
    except DataError:
        return load_dataset("mnist", "test")[0]


def pick(at, name: str, view: str = "One model"):
    at.segmented_control(key="anomaly_view").set_value(view).run()
    at.selectbox(key="anomaly_ckpt").set_value(name).run()
    assert not at.exception, at.exception
    return at


def test_an_rgb_user_model_is_measured_live_on_its_own_images(monkeypatch):
    serve(monkeypatch, RGB)
    at = open_page(PAGE)
    pick(at, "rgb-digits")
    assert "rgb-digits" in at.selectbox(key="anomaly_ckpt").options
    (per_set,) = (d.value for d in at.dataframe)
    live = dict(per_set["AUROC"])
    try:
        load_dataset("fashion-mnist", "test")
        expected = set(set_names((3, 32, 32)))
    except DataError:
        expected = set(set_names((3, 32, 32))) - {"Fashion-MNIST"}
    assert set(live) == expected and "shifted 8 px" in live  # the sets of a 32 px model, shift included
    assert all(isinstance(v, float) and math.isfinite(v) and 0 <= v <= 1 for v in live.values()), live
    # the same numbers from the analysis functions, on the images the page says it used
    model = catalogue.load("rgb-digits")
    inside = torch.from_numpy(pick_inside(model.data.images, USER_HELD_OUT, SETS_SEED))
    sets = make_sets(inside, SETS_SEED, None)
    again = auroc_row(model, inside, {k: sets[k] for k in ("uniform noise", "interpolations", "shrunk to half")})
    for k, v in again.items():
        assert abs(live[k] - v) <= SAME_PROCESS_ABS, (k, live[k], v)
    assert len({round(v, 6) for v in live.values()}) >= 4  # numbers from the model, not one constant per set
    body = texts(at) + " ".join(i.value for i in at.info)
    assert "Computed live on this machine" in body and "300 of your images, drawn at random" in body
    assert "do not apply" in body and "Over the goal's six sets" not in body  # the digits' goal is MNIST's
    # "Every model": the stored table, and under it the user's model with the same AUROCs
    at.segmented_control(key="anomaly_view").set_value("Every model").run()
    assert not at.exception
    yours = next(d.value for d in at.dataframe if "rgb-digits" in d.value.index)
    assert yours.loc["rgb-digits", "shape"] == "3×32×32"
    assert yours.loc["rgb-digits", "uniform noise"] == live["uniform noise"]


def test_your_image_on_an_rgb_model_is_one_of_its_own_edited(monkeypatch):
    serve(monkeypatch, RGB)
    at = pick(open_page(PAGE), "rgb-digits", "Your digit")
    assert not [r for r in at.radio if r.key == "anomaly_source"]  # no drawing or digit upload for 3×32×32
    assert any("Drawing a digit and uploading a picture are for 1×28×28" in c.value for c in at.caption)
    line = lambda: next(m.value for m in at.markdown if m.value.startswith("Score −E"))  # noqa: E731
    before = line()
    assert "of your 300 images" in before
    at.slider(key="anomaly_rotate").set_value(90).run()
    at.checkbox(key="anomaly_erase_on").check().run()
    assert not at.exception and line() != before
    assert at.slider(key="anomaly_erase_rows_32x32").max == 31  # the box's sliders span the model's 32 px


def test_a_grey_28px_user_model_is_measured_on_its_own_images_not_mnists(monkeypatch):
    serve(monkeypatch, GRAY)
    at = pick(open_page(PAGE), "gray-digits")
    body = texts(at) + " ".join(i.value for i in at.info)
    assert "of your images" in body and "gray_digits.npz" in body and "MNIST test digits" not in body


def test_a_user_model_without_data_gets_a_message(monkeypatch):
    serve(monkeypatch, NO_DATA)
    at = open_page(PAGE)
    assert any("start ebmviz" in w.value.lower() and "--data" in w.value for w in at.warning)  # under the table
    for view in ("One model", "Your digit"):
        pick(at, "rgb-nodata", view)
        (warning,) = [w.value for w in at.warning if "rgb-nodata" in w.value]
        assert "3×32×32" in warning and "--data" in warning
        assert not at.dataframe and not at.get("plotly_chart")  # nothing measured, nothing drawn


def test_the_fashion_set_takes_the_models_shape_and_stays_in_range():
    inside = torch.from_numpy(load_images(RGB.data).images[:50])
    fashion = fashion_or_stand_in()
    sets = make_sets(inside, SETS_SEED, fashion)
    f = sets["Fashion-MNIST"]
    assert f.shape == (50, 3, 32, 32) and f.dtype == torch.float32
    assert f.min() >= -1 and f.max() <= 1
    assert torch.equal(f[:, 0], f[:, 1]) and torch.equal(f[:, 1], f[:, 2])  # grey repeated to three channels
    resized = F.interpolate(fashion[:50], size=(32, 32), mode="bilinear", align_corners=False)
    torch.testing.assert_close(f[:, :1], resized.clamp(-1, 1))
    # a resize, not another picture: each image's mean brightness is kept within a hundredth
    assert (f.mean((1, 2, 3)) - fashion[:50].mean((1, 2, 3))).abs().max() < 0.01
    assert all(v.shape == inside.shape for v in sets.values()) and list(sets) == list(set_names((3, 32, 32)))


def test_the_sets_and_edits_take_any_shape():
    x = torch.rand(6, 3, 16, 40, generator=torch.Generator().manual_seed(0)) * 2 - 1
    sets = make_sets(x, 1, torch.rand(9, 1, 28, 28) * 2 - 1)
    assert all(v.shape == x.shape for v in sets.values()), {k: v.shape for k, v in sets.items()}
    shifted = sets["shifted 4 px"]  # a quarter of the shorter side
    assert torch.equal(shifted[..., 4:, 4:], x[..., :-4, :-4]) and (shifted[..., :4, :] == -1).all()
    c = sets["constant images"]
    assert (c == c[..., :1, :1]).all() and not torch.equal(c[:, 0], c[:, 1])  # one colour per image
    assert set_names((1, 28, 28)) == SETS  # the digits' sets keep their names
    assert fit(torch.ones(2, 3, 64, 64), (1, 8, 8)).shape == (2, 1, 8, 8)  # colour to grey, shrunk
    image = x[:1, :, :, :16].contiguous()  # (1, 3, 16, 16)
    out = edit(image, 0, (0, 0, 3, 3), (15, 0, 15, 15))
    assert out.shape == image.shape and (out[..., :4, :4] == -1).all() and (out[..., 15, :] == 1).all()
    assert np.isclose(float(edit(image, 180)[0, 0, 0, 0]), float(image[0, 0, -1, -1]), atol=1e-5)
