"""ebmviz entry point: page config, navigation over views/ (``ebmviz.app.navigation.PAGES``), the shared sidebar.

The page scripts live in ``views/``, not ``pages/``: Streamlit still treats a folder named
``pages`` beside the entry script as a legacy multipage app, and a deep link such as
``/langevin`` then runs the page without this entry point (no sidebar, no page config).
"""

# pandas first, on purpose: Streamlit imports it lazily (at the first st.dataframe), and a plotly figure built
# in another session's thread meanwhile saw the half-imported module ("partially initialized module 'pandas' has
# no attribute 'Series'", benchmarks/load.py with 8 sessions). Imported at the top of every session's run, no
# page code runs while it is half-imported (a second importer waits for the first).
import pandas  # noqa: F401, I001
import streamlit as st

from ebmviz.app import links, presentation
from ebmviz.app.navigation import navigation
from ebmviz.app.server import freeze_imports, limit_torch_threads
from ebmviz.app.widgets import shared_fields, sidebar

limit_torch_threads()  # EBMVIZ_TORCH_THREADS, default 1 (why: ebmviz/app/server.py)
freeze_imports()  # once: the modules' objects out of the full garbage collection after every run (why: there too)

# The favicon is an emoji, which the browser draws itself: a ":material/…:" favicon is fetched from
# fonts.gstatic.com, which a lecture hall without internet cannot reach (tests/test_offline.py).
st.set_page_config(page_title="ebmviz", page_icon="⚡", layout="wide",
                   initial_sidebar_state="collapsed" if presentation.link_asks_for_it() else "auto")
page = navigation()
links.restore(shared_fields())  # a link's seed, device and presentation mode, before the sidebar draws them
sidebar()
presentation.stylesheet()
page.run()
