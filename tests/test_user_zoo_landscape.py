"""AppTest: the user's own models and added checkpoint folders on the Models page and the Home page (what each is,
its error when it cannot be used, no scores made up for it) and a map made of a 3×32×32 user model on the Energy
landscape page."""

import hashlib
import importlib.util
import json
import shutil

import pandas as pd

from ebmviz import checkpoints
from ebmviz.checkpoints import REPO_CHECKPOINTS
from ebmviz.landscape import load_map
from ebmviz.user_model import UserSpec
from tests.test_app import open_page, texts
from tests.user_models import ENERGY_FILE, RGB, serve

ZOO, LANDSCAPE = "views/model_zoo.py", "views/landscape.py"


def shipped_names() -> list[str]:
    return [i.name for i in checkpoints.list_checkpoints(REPO_CHECKPOINTS) if i.error is None]


def fixture_parameters() -> int:
    """The real parameter count of ``tests/fixtures/user_energy.py:build()``, built here on its own."""
    spec = importlib.util.spec_from_file_location("fixture_energy_count", ENERGY_FILE)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return sum(p.numel() for p in module.build().parameters())


def messages(at) -> str:
    return " ".join(w.value for w in at.warning) + " ".join(e.value for e in at.error)


def test_models_page_says_what_your_model_is(monkeypatch):
    broken = UserSpec(f"{ENERGY_FILE}:nope", name="broken-one")
    serve(monkeypatch, RGB, broken)
    at = open_page(ZOO)
    table = at.dataframe[0].value
    assert list(table.index) == shipped_names() + ["rgb-digits"]  # the shipped rows stay, the broken one is left out
    real = fixture_parameters()
    assert table.loc["rgb-digits", "parameters"] == real and table.loc["rgb-digits", "from"] == "your own"
    assert table.loc["rgb-digits", "scored file"] == "not scored (your own)"
    assert pd.isna(table.loc["rgb-digits", "confident (> 0.9)"])  # no stored score is made up for it
    yours = at.dataframe[1].value["rgb-digits"]
    assert yours["file and factory"] == RGB.target
    sha = hashlib.sha256(open(RGB.weights, "rb").read()).hexdigest()[:16]
    assert yours["weights SHA-256 (first 16 hex digits)"] == sha and yours["weights"] == RGB.weights
    assert int(yours["parameters"].replace(",", "")) == real
    assert yours["image shape (C×H×W)"] == "3×32×32" and yours["value range"] == "[-1, 1]"
    assert yours["data"].startswith("400 images, labelled") and yours["negate"].startswith("no")
    warned = messages(at)
    assert "broken-one" in warned and "has no 'nope'" in warned  # the unusable model shows its error
    at.segmented_control(key="zoo_view").set_value("One model").run()
    at.selectbox(key="zoo_one").set_value("rgb-digits").run()
    assert not at.exception and at.dataframe[0].value["rgb-digits"]["image shape (C×H×W)"] == "3×32×32"


def test_an_added_folder_is_listed_as_added_and_never_none(monkeypatch, tmp_path):
    added = tmp_path / "mine_folder"
    added.mkdir()
    shutil.copy(REPO_CHECKPOINTS / "shortrun-mnist.safetensors", added / "mine.safetensors")
    shutil.copy(REPO_CHECKPOINTS / "shortrun-mnist.safetensors", added / "shortrun-mnist.safetensors")
    monkeypatch.setenv("EBMVIZ_CHECKPOINT_DIR", str(added))
    at = open_page(ZOO)
    assert not at.exception
    table = at.dataframe[0].value
    renamed = "shortrun-mnist@mine_folder"
    assert list(table.index) == shipped_names() + ["mine", renamed]
    for name in ("mine", renamed):
        assert table.loc[name, "from"] == f"added from {added}"
        assert table.loc[name, "scored file"] == "not scored (added)"
        assert pd.isna(table.loc[name, "parameters"])  # the shipped file's stored numbers are not lent to a copy
    assert table.loc["shortrun-mnist", "scored file"] != "not scored (added)"
    assert not table.isin([None, "None"]).any().any() and "None" not in table.astype(str).to_string().split()
    assert at.dataframe[0].proto.placeholder == "–"  # a missing number is drawn as –, not Streamlit's "None"
    home = open_page()
    rows = home.dataframe[0].value.set_index("checkpoint")
    assert rows.loc["mine", "from"] == "added (mine_folder)" and rows.loc["shortrun-mnist", "from"] == "shipped"


def test_home_lists_your_models(monkeypatch):
    serve(monkeypatch, RGB, UserSpec(f"{ENERGY_FILE}:nope", name="broken-one"))
    rows = open_page().dataframe[0].value.set_index("checkpoint")
    assert rows.loc["rgb-digits", "from"] == "your own" and "3×32×32" in rows.loc["rgb-digits", "what"]
    assert "has no 'nope'" in rows.loc["broken-one", "what"]
    assert set(shipped_names()) <= set(rows.index)


def map_now_small(at) -> None:
    """Press Map now with a small budget (12 starts, 60 steps, k = 4): the map is made and stored, no exception."""
    at.number_input(key="ls_new_n").set_value(12).run()
    at.number_input(key="ls_new_steps").set_value(60).run()
    at.number_input(key="ls_new_k").set_value(4).run()
    at.button(key="ls_go").click().run()
    assert not at.exception, at.exception
    assert any("Stored as" in s.value for s in at.success), [e.value for e in at.error]


def test_map_now_maps_your_rgb_model(monkeypatch, tmp_path):
    for f in REPO_CHECKPOINTS.glob("*.safetensors"):
        (tmp_path / f.name).symlink_to(f)
    monkeypatch.setenv("EBMVIZ_SHIPPED_DIR", str(tmp_path))
    serve(monkeypatch, RGB)
    at = open_page(LANDSCAPE)
    at.segmented_control(key="ls_view").set_value("Map now").run()
    at.selectbox(key="ls_new_ckpt").set_value("rgb-digits").run()
    assert not at.exception and at.radio(key="ls_new_space").options == ["image"]
    assert at.radio(key="ls_new_from").value == "its own images"
    words = texts(at)
    assert "minima are unlabelled" in words and "latent-space map needs a decoder" in words
    map_now_small(at)
    made = list((tmp_path / "maps" / "cache").glob("rgb-digits-*.safetensors"))
    assert len(made) == 1
    land = load_map(made[0])
    assert land.n_minima >= 1 and len(land.assignment) == 12 and land.minima.shape[1:] == (3, 32, 32)
    assert land.images.shape[1:] == (3, 32, 32) and land.start_images.shape == (12, 3, 32, 32)  # stored pictures
    assert land.meta["checkpoint"] == "rgb-digits" and land.meta["made_on"] == "the Energy landscape page"
    assert land.labels is not None and "minima_quality" not in land.meta  # data labels on the starts, minima unread
    at.segmented_control(key="ls_view").set_value("Disconnectivity graph").run()
    assert not at.exception and at.selectbox(key="ls_map").value.endswith("(made here)")
    assert {m.label: m.value for m in at.metric}["Minima"] == str(land.n_minima)
    assert "3×32×32 pixels" in texts(at) and "minima are unlabelled" in texts(at)
    caps = " ".join(img.caption for el in at.get("image") for img in el.proto.imgs)
    # the lowest minimum's picture and the starts of its basin: colour pictures, the starts drawn again from the data
    assert "its lowest minimum" in caps and "digits that descend into this basin" in caps
    at.segmented_control(key="ls_view").set_value("UMAP").run()
    assert not at.exception and any(f["layout"]["xaxis"]["title"]["text"] == "PCA 1" for f in
                                    (json.loads(c.proto.spec) for c in at.get("plotly_chart")))
    at.segmented_control(key="ls_view").set_value("Your digit").run()
    assert not at.exception and "3×32×32 images" in at.info[0].value  # MNIST digits cannot descend it: said so


DECODER_CODE = '''
import torch
from torch import nn

class WithDecoder(nn.Module):
    image_shape = (1, 12, 12)
    latent_dim = 4

    def __init__(self):
        super().__init__()
        g = torch.Generator().manual_seed(0)
        self.dec = nn.Parameter(torch.randn(4, 144, generator=g))
        self.w = nn.Parameter(torch.randn(144, generator=g) * 0.1)

    def decode(self, z):
        return torch.tanh(z @ self.dec).view(len(z), 1, 12, 12)

    def forward(self, x):
        flat = x.flatten(1)
        return flat @ self.w + 0.5 * flat.pow(2).sum(1)

def build():
    return WithDecoder()
'''


def test_map_now_maps_a_user_decoders_latent_space(monkeypatch, tmp_path):
    for f in REPO_CHECKPOINTS.glob("*.safetensors"):
        (tmp_path / f.name).symlink_to(f)
    (tmp_path / "decoder.py").write_text(DECODER_CODE)
    monkeypatch.setenv("EBMVIZ_SHIPPED_DIR", str(tmp_path))
    serve(monkeypatch, UserSpec(f"{tmp_path / 'decoder.py'}:build", name="with-decoder"))
    at = open_page(LANDSCAPE)
    at.segmented_control(key="ls_view").set_value("Map now").run()
    at.selectbox(key="ls_new_ckpt").set_value("with-decoder").run()
    assert at.radio(key="ls_new_space").options == ["latent", "image"]
    assert "it can also be mapped in latent space" in texts(at)
    at.radio(key="ls_new_space").set_value("latent").run()
    map_now_small(at)
    (made,) = (tmp_path / "maps" / "cache").glob("with-decoder-*.safetensors")
    land = load_map(made)
    assert land.meta["space"] == "latent" and land.minima.shape[1:] == (4,)  # minima are codes z
    assert land.images.shape[1:] == (1, 12, 12) and land.start_images.shape == (12, 1, 12, 12)  # g(z) pictures
    at.segmented_control(key="ls_view").set_value("Disconnectivity graph").run()
    assert not at.exception and {m.label: m.value for m in at.metric}["Minima"] == str(land.n_minima)
