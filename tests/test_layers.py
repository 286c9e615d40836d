"""The layer rules of docs/ARCHITECTURE.md, read from the code's imports with ``ast``.

    views/, app.py  →  ebmviz.app (Streamlit)  →  ebmviz.figures (plotly)  →  ebmviz.analysis, ebmviz.landscape
                    →  ebmviz.checkpoints  →  ebmviz.models  →  ebmviz.sampling  →  the basic modules

A module imports its own layer and the layers below it, never one above; ``ebmviz`` never imports ``training`` or
``views``; Streamlit only in ``ebmviz/app`` and the page scripts; plotly only in ``ebmviz/figures`` and
``ebmviz/export``; the page scripts do no tensor math (no torch) and reach the library through ``ebmviz.app`` and
``ebmviz.figures`` only. Imports under ``if TYPE_CHECKING:`` are left out (they run nowhere).
"""

from __future__ import annotations

import ast
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
# ebmviz's layers, lowest first; a module sits in the layer of its package (or, at the top, its own name)
LAYERS = ({"images", "data", "transforms", "device", "settings", "storage", "export", "image_sets",
           "training_log"}, {"sampling"},
          {"models"}, {"checkpoints", "user_model", "catalogue"}, {"analysis", "landscape", "monitor"}, {"figures"},
          {"app", "cli", "__main__"})


@dataclass(frozen=True)
class Import:
    source: str  # the importing file, relative to the repository
    module: str  # dotted: "ebmviz.analysis.metrics"; "from ebmviz import figures" gives "ebmviz.figures"
    line: int


def imports_of(path: Path, root: Path = ROOT) -> list[Import]:
    """Every module ``path`` imports, ``from pkg import name`` counted as ``pkg.name`` when ``pkg`` is ebmviz's."""
    tree = ast.parse(path.read_text(), str(path))
    skip = {id(n) for node in ast.walk(tree) if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test)
            for n in ast.walk(node)}
    rel, out = str(path.relative_to(root)), []
    for node in ast.walk(tree):
        if id(node) in skip:
            continue
        if isinstance(node, ast.Import):
            out += [Import(rel, a.name, node.lineno) for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            names = [f"{node.module}.{a.name}" for a in node.names] if node.module.startswith("ebmviz") else []
            out += [Import(rel, n, node.lineno) for n in names] or [Import(rel, node.module, node.lineno)]
    return out


def layer(module: str) -> int | None:
    """The layer of an ebmviz module ("ebmviz.analysis.metrics" -> 4); None for ebmviz itself and outside it."""
    parts = module.split(".")
    if parts[0] != "ebmviz" or len(parts) < 2:
        return None
    return next((i for i, names in enumerate(LAYERS) if parts[1] in names), None)


def files(*folders: str, root: Path = ROOT) -> list[Path]:
    return sorted(p for f in folders for p in (root / f).rglob("*.py"))


def violations(root: Path = ROOT) -> list[str]:
    """Every import that breaks a rule, as "file:line imports module (the rule)"; [] when the layout holds."""
    out = []
    for path in files("ebmviz", root=root):
        rel = path.relative_to(root)
        own = layer(".".join(rel.with_suffix("").parts))
        for imp in imports_of(path, root):
            top = imp.module.split(".")[0]
            there = layer(imp.module)
            if top in ("training", "views", "app"):
                out.append(f"{imp.source}:{imp.line} imports {imp.module} (ebmviz never imports {top})")
            elif top == "streamlit" and rel.parts[1] != "app":
                out.append(f"{imp.source}:{imp.line} imports streamlit (only ebmviz/app is Streamlit-aware)")
            elif top == "plotly" and rel.parts[1] not in ("figures", "export.py"):
                out.append(f"{imp.source}:{imp.line} imports plotly (only ebmviz/figures draws)")
            elif own is not None and there is not None and there > own:
                out.append(f"{imp.source}:{imp.line} imports {imp.module} (layer {there} above its own {own})")
    pages = files("views", root=root) + [root / "app.py"]
    for path in pages:
        for imp in imports_of(path, root):
            top = imp.module.split(".")[0]
            if top == "torch":
                out.append(f"{imp.source}:{imp.line} imports torch (no tensor math in a page script)")
            elif top == "plotly":
                out.append(f"{imp.source}:{imp.line} imports plotly (figures come from ebmviz.figures)")
            elif top == "ebmviz" and (imp.module.split(".") + [""])[1] not in ("app", "figures"):
                out.append(f"{imp.source}:{imp.line} imports {imp.module} (pages reach the library through "
                           "ebmviz.app and ebmviz.figures)")
    for path in files("training", root=root):
        for imp in imports_of(path, root):
            if imp.module.startswith(("ebmviz.app", "streamlit", "views")):
                out.append(f"{imp.source}:{imp.line} imports {imp.module} (trainers run without the app)")
    return out


def test_the_code_keeps_the_layer_rules():
    assert violations() == []


def test_every_module_of_ebmviz_sits_in_a_layer():
    """A new package must be placed in ``LAYERS`` (and in docs/ARCHITECTURE.md) before it is used."""
    parts = [p.relative_to(ROOT).parts for p in files("ebmviz")]
    names = {rel[1] if len(rel) > 2 else Path(rel[1]).stem for rel in parts} - {"__init__"}
    assert names - set().union(*LAYERS) == set()


def test_every_page_shares_its_stem_with_its_module_under_app_pages():
    views = {p.stem for p in (ROOT / "views").glob("*.py")}
    pages = {p.stem for p in (ROOT / "ebmviz/app/pages").glob("*.py")} - {"__init__"}
    assert views == pages


PLANTED = {
    "ebmviz/models/leaky.py": ("from ebmviz.analysis import metrics\n", "layer 4 above its own 2"),
    "ebmviz/analysis/ui.py": ("import streamlit as st\n", "only ebmviz/app is Streamlit-aware"),
    "ebmviz/sampling/plot.py": ("import plotly.graph_objects as go\n", "only ebmviz/figures draws"),
    "ebmviz/checkpoints.py": ("from training.run import Run\n", "ebmviz never imports training"),
    "views/home.py": ("import torch\n", "no tensor math in a page script"),
    "views/langevin.py": ("from ebmviz.sampling import langevin\n", "pages reach the library through"),
    "training/shortrun.py": ("from ebmviz.app import cache\n", "trainers run without the app"),
}


@pytest.mark.parametrize("planted", list(PLANTED))
def test_a_planted_violation_is_caught(tmp_path, planted):
    """The rules can fail: a copy of the tree with one bad import added reports exactly that import."""
    for folder in ("ebmviz", "views", "training"):
        for path in files(folder):
            target = tmp_path / path.relative_to(ROOT)
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(path.read_text())
    (tmp_path / "app.py").write_text((ROOT / "app.py").read_text())
    line, rule = PLANTED[planted]
    target = tmp_path / planted
    target.write_text((target.read_text() if target.exists() else "") + line)
    found = violations(tmp_path)
    assert len(found) == 1 and found[0].startswith(planted) and rule in found[0], found
