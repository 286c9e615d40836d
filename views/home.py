"""Home: what an energy-based model is, how Langevin sampling works, what each view shows."""

import streamlit as st

from ebmviz.app.navigation import PAGES
from ebmviz.app.pages.home import shipped_models, shortrun_settings

shipped = shortrun_settings()
st.title("ebmviz — watch energy-based models work")
st.markdown(
    "An **energy-based model** (EBM) assigns every image $x$ a number $E_\\theta(x)$, its *energy*. "
    "Low energy means *likely*: the model defines the density"
)
st.latex(r"p_\theta(x) = \frac{\exp(-E_\theta(x))}{Z(\theta)},\qquad "
         r"Z(\theta) = \int \exp(-E_\theta(x))\,dx .")
st.markdown(
    "$Z$ cannot be computed for 784-pixel images, so we never evaluate $p_\\theta$ itself. "
    "We *sample* from it by **Langevin dynamics**: walk downhill on the energy and add noise."
)
st.latex(r"x_{t+1} = x_t - s\,\nabla_x E_\theta(x_t) + \sigma\,\xi_t,\qquad \xi_t \sim \mathcal N(0, I).")
st.markdown(
    "With $\\sigma = \\sqrt{2s}$ and small $s$ this chain samples $p_\\theta$ exactly in the long run. "
    f"Image EBMs choose $s$ and $\\sigma$ separately (the shipped model: {shipped.settings}), which is "
    "Langevin at an **effective temperature** $T = \\sigma^2 / (2s)$, far below 1: the chain mostly "
    "descends the energy. **MALA** adds an accept/reject step that makes each move exact for "
    "$\\exp(-E/T)$.\n\n"
    "Training pushes the energy of real digits down and the energy of the model's own samples up:"
)
st.latex(r"\nabla_\theta \mathcal L = \mathbb E_{x\sim\text{data}}[\nabla_\theta E_\theta(x)]"
         r" - \mathbb E_{x\sim p_\theta}[\nabla_\theta E_\theta(x)]"
         r" \;\;(+\ \alpha\,\nabla_\theta\,\mathbb E[E_\theta(x)^2]\ \text{to keep energies small}).")
st.markdown(
    "The negative samples come from short Langevin runs started in a *replay buffer* of earlier "
    f"samples (the shipped model draws {shipped.fresh} of each batch fresh from noise). Models trained on short runs "
    "are good samplers for the chain lengths they saw; nothing in training controls where much longer "
    "chains go (Nijkamp et al. found over-saturated images for non-persistent short-run models). The "
    "Langevin page runs a short and a long chain from the same seed so you can see what this model does."
)

st.header("Views")
for page in PAGES[1:]:
    st.page_link(page.script, label=page.title, icon=page.icon)
    st.markdown(page.summary)
st.caption("The seed and device in the sidebar apply to every view. Every page keeps its settings in the address "
           "bar: copy the link to share exactly what you see, and use a page's Export panel to save its chains (GIF), "
           "arrays (NPZ), settings (JSON) and figures (HTML).")

st.header("Shipped models")
st.dataframe(shipped_models(), hide_index=True, width="stretch")
