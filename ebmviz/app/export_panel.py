"""The "Export" expander: download buttons for a page's chains (GIF), arrays (NPZ), settings (JSON), figures (HTML).

Heavy exports take a zero-argument callable, so the work happens only when the user clicks (Streamlit runs it
outside the script, so a callable must not draw), and ``on_click="ignore"`` keeps a download from rerunning
the page.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import TYPE_CHECKING
from urllib.parse import urlencode

import numpy as np
import streamlit as st

from ebmviz.export import config_json, figure_html, file_stem, gif_bytes, npz_bytes

if TYPE_CHECKING:  # only for the annotation: the figures come from ebmviz.figures
    import plotly.graph_objects as go


def export_panel(stem: str, *, frames: Callable[[], np.ndarray] | None = None,
                 trajectory: Callable[[], dict] | None = None, config=None,
                 figures: dict[str, Callable[[], go.Figure]] | None = None, fps: float = 8.0, key: str) -> None:
    """Draw the export expander; each export that is given gets one download button.

    Args:
        stem: file-name stem (page, model, seed …), made safe with ``file_stem``.
        frames: returns (F, H, W) or (F, H, W, 3) uint8 frames for "GIF of the chains".
        trajectory: returns name -> array (e.g. ``trajectory_arrays(traj)``) for "Trajectory arrays (NPZ)".
        config: settings (a config dataclass or dict): "Settings (JSON)", and the NPZ's ``meta_json``.
        figures: name -> callable returning a plotly figure: one "<name> (HTML)" button each.
        fps: GIF frame rate.
        key: widget-key prefix, unique on the page.
    """
    meta = None
    if config is not None:  # the settings, and the page's link (the query string that reopens this view)
        link = "?" + urlencode({k: st.query_params[k] for k in st.query_params})
        meta = {**json.loads(config_json(config)), "link": link}
    settings = json.dumps(meta, indent=2, sort_keys=True) if meta is not None else None
    with st.expander("Export", icon=":material/download:"):
        if frames is not None:
            st.download_button("GIF of the chains", data=lambda: gif_bytes(frames(), fps=fps),
                               file_name=file_stem(stem, "chains") + ".gif", mime="image/gif",
                               key=f"{key}_gif", on_click="ignore", icon=":material/animation:")
        if trajectory is not None:
            st.download_button("Trajectory arrays (NPZ)", data=lambda: npz_bytes(trajectory(), meta=meta),
                               file_name=file_stem(stem, "trajectory") + ".npz", mime="application/octet-stream",
                               key=f"{key}_npz", on_click="ignore", icon=":material/data_array:")
        if settings is not None:
            st.download_button("Settings (JSON)", data=settings, file_name=file_stem(stem, "settings") + ".json",
                               mime="application/json", key=f"{key}_json", on_click="ignore",
                               icon=":material/tune:")
        for i, (name, make) in enumerate((figures or {}).items()):
            st.download_button(f"{name} (HTML)", data=lambda make=make: figure_html(make()),
                               file_name=file_stem(stem, name) + ".html", mime="text/html",
                               key=f"{key}_html_{i}", on_click="ignore", icon=":material/monitoring:")
        st.caption("NPZ files hold plain arrays: `np.load(path)` reads them without pickle (settings in "
                   "`meta_json`). HTML figures include plotly.js and open offline.")
