"""The only Streamlit-aware part of ebmviz: cached loaders, shared widgets and session keys."""
