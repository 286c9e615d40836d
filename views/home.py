"""Home: a suggested route for a class, then what an energy-based model is and how Langevin sampling works."""

import streamlit as st

from ebmviz.app.lesson import route_link
from ebmviz.app.navigation import PAGES, ROUTE
from ebmviz.app.pages.home import model_rows, shortrun_settings

shipped = shortrun_settings()
st.title("ebmviz — watch energy-based models work")
st.markdown("An **energy-based model** gives every image a single number, its *energy*: low for images that look "
            "like its training data, high for everything else. To *draw* an image from it, a sampler starts from "
            "noise and walks downhill on the energy, with a little randomness added at each step. ebmviz lets you "
            "watch that happen, live, on small models trained on handwritten digits.")

st.header(f"A lesson in {len(ROUTE)} stops")
st.markdown("A route for a class of about 50 minutes, from the simplest picture to the whole landscape. Every stop "
            "ends with **What to notice** — three lines read from the run on your screen — and a link to the next "
            "stop. The sidebar's **Presentation mode** fits each page to a 1280×720 projector.")
for i, page in enumerate(ROUTE, start=1):
    st.page_link(page.script, label=f"{i}. {page.title} — {page.see}", icon=page.icon)
route_link(PAGES[0].script)

st.header("The idea in four lines")
st.markdown("The model defines a probability for every image $x$ through its energy $E_\\theta(x)$ (θ are the "
            "network's weights):")
st.latex(r"p_\theta(x) = \frac{\exp(-E_\theta(x))}{Z(\theta)},\qquad "
         r"Z(\theta) = \int \exp(-E_\theta(x))\,dx .")
st.markdown(
    "$Z$ cannot be computed for 784-pixel images, so we never evaluate $p_\\theta$ itself. "
    "We *sample* from it by **Langevin dynamics**: walk downhill on the energy and add noise. With step size $s$ "
    "and noise $\\sigma$ (every page uses these two letters):"
)
st.latex(r"x_{t+1} = x_t - s\,\nabla_x E_\theta(x_t) + \sigma\,\xi_t,\qquad \xi_t \sim \mathcal N(0, I),"
         r"\qquad T = \frac{\sigma^2}{2s}.")
st.markdown(
    "$T$ is the **temperature**: the chain samples $\\exp(-E/T)$ when $s$ is small, so $T = 1$ is the model's own "
    f"density. Image EBMs choose $s$ and $\\sigma$ separately (the shipped model: {shipped.settings}), which makes "
    "$T$ far below 1: the chain mostly descends the energy. **MALA** adds an accept/reject step that makes each "
    "move exact for $\\exp(-E/T)$.\n\n"
    "Training pushes the energy of real digits down and the energy of the model's own samples up:"
)
st.latex(r"\nabla_\theta \mathcal L = \mathbb E_{x\sim\text{data}}[\nabla_\theta E_\theta(x)]"
         r" - \mathbb E_{x\sim p_\theta}[\nabla_\theta E_\theta(x)]"
         r" \;\;(+\ \alpha\,\nabla_\theta\,\mathbb E[E_\theta(x)^2]\ \text{to keep energies small}).")
st.markdown(
    "The model's own samples (the *negatives*) come from short Langevin runs started in a *replay buffer* of "
    f"earlier samples (the shipped model draws {shipped.fresh} of each batch fresh from noise). Models trained on "
    "short runs are good samplers for the chain lengths they saw; nothing in training controls where much longer "
    "chains go (Nijkamp et al. found over-saturated images for non-persistent short-run models). The Langevin page "
    "runs a short and a long chain from the same seed so you can see what this model does."
)

st.header("Every view")
for page in PAGES[1:]:
    st.page_link(page.script, label=page.title, icon=page.icon)
    st.markdown(page.summary)
st.caption("The seed and device in the sidebar apply to every view. Every page keeps its settings in the address "
           "bar: copy the link to share exactly what you see, and use a page's Export panel to save its chains (GIF), "
           "arrays (NPZ), settings (JSON) and figures (HTML).")

st.header("Models")
st.caption("Shipped with ebmviz, from folders added with `ebmviz run --checkpoints DIR`, and your own "
           "(`ebmviz run --model PATH.py:FACTORY`); the Models page says more about each.")
st.dataframe(model_rows(), hide_index=True, width="stretch",
             column_config={"checkpoint": st.column_config.TextColumn(pinned=True)})
