"""Chains from any sampler in Debian's Chromium: an ``.npz`` written by a plain PyTorch loop, uploaded on the Debug a
sampler page, plays in the player with its traces; a file of pickled objects shows its message instead."""

import io
import os
import time

import numpy as np
import pytest
import torch

from ebmviz.data import load_dataset
from tests.browser import SHOTS, browser_marks, chromium_page, step_shown, streamlit_server, wait_idle

pytestmark = browser_marks()
playwright = pytest.importorskip("playwright.sync_api")
UPLOAD = '[data-testid="stFileUploaderDropzoneInput"]'


@pytest.fixture(scope="module")
def app_url():
    with streamlit_server() as url:
        yield url


def pytorch_chains(path) -> None:
    """Langevin written out by hand in PyTorch, no ebmviz: 8 chains from noise on E(x) = ‖x − d‖²/(2·0.3²) around
    real MNIST digits d, frames in [0, 1] every 10 of 120 steps."""
    digits = (load_dataset("mnist", "test")[0][:8] + 1) / 2  # in [0, 1], as the loop keeps its states
    gen = torch.Generator().manual_seed(0)
    x, s = torch.rand(8, 1, 28, 28, generator=gen), 2e-3

    def quadratic(x):
        return ((x - digits) ** 2).flatten(1).sum(1) / (2 * 0.3 ** 2)

    frames, energy, grad_norm, step_norm = [x], [], [], []
    for t in range(1, 121):
        x = x.detach().requires_grad_(True)
        e = quadratic(x)
        (g,) = torch.autograd.grad(e.sum(), x)
        new = (x - s * g + (2 * s) ** 0.5 * torch.randn(x.shape, generator=gen)).clamp(0, 1).detach()
        energy.append(e.detach())
        grad_norm.append(g.flatten(1).norm(dim=1))
        step_norm.append((new - x).detach().flatten(1).norm(dim=1))
        x = new
        if t % 10 == 0:
            frames.append(x)
    energy.append(quadratic(x).detach())
    np.savez_compressed(path, frames=torch.stack(frames).numpy(), range=np.array([0.0, 1.0]),
                        frame_steps=np.arange(0, 121, 10), energy=torch.stack(energy).numpy(),
                        grad_norm=torch.stack(grad_norm).numpy(), step_norm=torch.stack(step_norm).numpy())


def open_file_view(page, url: str) -> None:
    page.goto(f"{url}/sampler_debug?view=file")
    wait_idle(page)
    page.locator(UPLOAD).wait_for(state="attached", timeout=60_000)


def no_exception(page) -> None:
    assert page.locator('[data-testid="stException"]').count() == 0, page.inner_text("body")[:2000]


def test_a_pytorch_file_plays_with_its_traces(app_url, tmp_path):
    path = tmp_path / "chains.npz"
    pytorch_chains(path)
    with chromium_page(height=1900) as page:  # tall enough for the grid and the traces in one screenshot
        open_file_view(page, app_url)
        page.locator(UPLOAD).set_input_files(str(path))
        page.get_by_text("Step 0 / 120").wait_for(timeout=60_000)
        wait_idle(page)
        assert "8 chain(s) of 28×28 grey images, 13 frames over 120 steps" in page.inner_text("body")
        page.locator(".js-plotly-plot").first.wait_for(timeout=60_000)  # the traces
        page.get_by_role("button", name="Play").click()
        steps, pictures, deadline = set(), set(), time.time() + 60
        grid = page.locator('[data-testid="stImage"] img').last
        while time.time() < deadline and (len(steps) < 4 or len(pictures) < 4):
            if (s := step_shown(page)) is not None:
                steps.add(s)
            if grid.count():
                pictures.add(grid.get_attribute("src"))
            time.sleep(0.1)
        assert len(steps) >= 3 and max(steps) > 0, steps  # frames advance while playing
        assert len(pictures) >= 3, len(pictures)  # and each is a new picture of the chains
        # the last frame stays up when the run ends, and the page is drawn paused
        page.wait_for_function("() => document.body.innerText.includes('Step 120 / 120 · frame 13 of 13 · last frame')",
                               timeout=60_000)
        wait_idle(page)
        page.locator(".js-plotly-plot").first.wait_for(timeout=60_000)
        body = page.inner_text("body")
        assert "energy E(x)" in body and "ESS of the energy" in body and "R-hat of the energy" in body
        no_exception(page)
        page.screenshot(path=os.path.join(SHOTS or str(tmp_path), "sampler-debug-file.png"))


def test_a_pickled_file_shows_its_message(app_url, tmp_path):
    buf = io.BytesIO()
    np.savez(buf, frames=np.array([{"x": 1}], dtype=object))  # np.savez pickles object arrays
    path = tmp_path / "pickled.npz"
    path.write_bytes(buf.getvalue())
    with chromium_page() as page:
        open_file_view(page, app_url)
        page.locator(UPLOAD).set_input_files(str(path))
        message = page.locator('[data-testid="stAlertContentError"]')
        message.wait_for(timeout=60_000)
        assert "pickled.npz cannot be opened: array(s) frames hold Python objects" in message.inner_text()
        assert step_shown(page) is None
        no_exception(page)
