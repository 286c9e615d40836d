"""ebmviz entry point: page config, navigation over views/, the shared sidebar.

The page scripts live in ``views/``, not ``pages/``: Streamlit still treats a folder named
``pages`` beside the entry script as a legacy multipage app, and a deep link such as
``/langevin`` then runs the page without this entry point (no sidebar, no page config).
"""

import streamlit as st

from ebmviz.app.widgets import sidebar

st.set_page_config(page_title="ebmviz", page_icon=":material/bolt:", layout="wide")

pages = st.navigation([
    st.Page("views/home.py", title="Home", icon=":material/home:", default=True),
    st.Page("views/langevin.py", title="Langevin chains", icon=":material/timeline:"),
    st.Page("views/coarse_to_fine.py", title="Coarse to fine", icon=":material/stacks:"),
    st.Page("views/triangle.py", title="Divergence triangle", icon=":material/change_history:"),
])
sidebar()
pages.run()
