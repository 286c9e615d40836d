"""ebmviz entry point: page config, navigation over pages/, the shared sidebar."""

import streamlit as st

from ebmviz.app.widgets import sidebar

st.set_page_config(page_title="ebmviz", page_icon=":material/bolt:", layout="wide")

pages = st.navigation([
    st.Page("pages/home.py", title="Home", icon=":material/home:", default=True),
    st.Page("pages/langevin.py", title="Langevin chains", icon=":material/timeline:"),
])
sidebar()
pages.run()
