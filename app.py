"""ebmviz entry point: page config, navigation over views/ (``ebmviz.app.navigation.PAGES``), the shared sidebar.

The page scripts live in ``views/``, not ``pages/``: Streamlit still treats a folder named
``pages`` beside the entry script as a legacy multipage app, and a deep link such as
``/langevin`` then runs the page without this entry point (no sidebar, no page config).
"""

import os

# pandas first, on purpose: Streamlit imports it lazily (at the first st.dataframe), and a plotly figure built
# in another session's thread meanwhile saw the half-imported module ("partially initialized module 'pandas' has
# no attribute 'Series'", benchmarks/load.py with 8 sessions). Imported at the top of every session's run, no
# page code runs while it is half-imported (a second importer waits for the first).
import pandas  # noqa: F401, I001
import streamlit as st
import torch

from ebmviz.app import links
from ebmviz.app.navigation import navigation
from ebmviz.app.widgets import shared_fields, sidebar

# One torch thread per computation by default: sessions run in threads of one process, and on a shared server
# several sessions each asking for every core made one page's descent take 30-220 s instead of 2-3 s
# (benchmarks/load.py). One user gains too here: the Langevin page played 23-26 frames/s with one thread, 16-18
# with two (2 cores, which the browser shares). EBMVIZ_TORCH_THREADS=n sets another number.
_threads = os.environ.get("EBMVIZ_TORCH_THREADS", "1")
THREADS = int(_threads) if _threads.isdigit() and int(_threads) > 0 else 1
if torch.get_num_threads() != THREADS:
    torch.set_num_threads(THREADS)

st.set_page_config(page_title="ebmviz", page_icon=":material/bolt:", layout="wide")
page = navigation()
links.restore(shared_fields())  # a link's seed and device, before the sidebar draws them
sidebar()
page.run()
