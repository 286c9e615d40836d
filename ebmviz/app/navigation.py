"""The app's pages, listed once: navigation (``app.py``), the home page's links and the lesson route read ``PAGES``.

The pages are in the order of the suggested lesson: from the 2-D sampler lab, where the exact answer is known,
through sampling digits, the methods, and what an energy says about images, to the landscape. The stops of the
route are the pages with a ``see`` line; Models is the reference shelf, off the route.
"""

from __future__ import annotations

from dataclasses import dataclass

import streamlit as st


@dataclass(frozen=True)
class PageInfo:
    script: str  # the page's file under views/
    title: str
    icon: str  # a Material icon, ":material/<name>:"
    summary: str  # what the page shows, for the home page ('' for home itself)
    see: str  # the lesson route's one line, "what you will see" there ('' off the route: Home, Models)

    @property
    def url_path(self) -> str:
        """The page's address under the app's root, e.g. "langevin" (Streamlit names it after the file)."""
        return self.script.removeprefix("views/").removesuffix(".py")


PAGES = (
    PageInfo("views/home.py", "Home", ":material/home:", "", ""),
    PageInfo("views/sampler_lab.py", "Sampler lab", ":material/science:",
             "Why samplers behave as they do, on 2-D energies whose exact density is known: ULA, MALA, HMC, "
             "annealed Langevin and proximal (JKO) steps side by side from the same start and seed, particles with "
             "trails and leapfrog paths, marginals against the exact ones, and acceptance, ESS, R-hat and the distance "
             "to the exact density.",
             "four samplers on a 2-D energy whose exact answer is known: which ones are right, and how fast"),
    PageInfo("views/langevin.py", "Langevin chains", ":material/timeline:",
             "Start chains from noise, digits, the replay buffer, a generator or your own picture on any shipped "
             "energy, or on your own model (`ebmviz run --model`); watch them animate live with energy, gradient "
             "norm, update norm and acceptance per step; follow their paths over a PCA map of the data; compare short "
             "and long runs.",
             "noise turning into digits under Langevin steps, live, with every number the sampler touches"),
    PageInfo("views/sampler_debug.py", "Debug a sampler", ":material/bug_report:",
             "Where does a sampler behave? A phase map of step size × noise for any energy (yours too): short runs "
             "batched together, each square marked diverged, saturated, stalled or mixing and coloured by sample "
             "quality or diversity, with the lines of constant temperature and the model's own setting; a click opens "
             "a square's setting on the Langevin page. And chains from any sampler: open an .npz of frames (and "
             "energies) written by your own code.", ""),
    PageInfo("views/coarse_to_fine.py", "Coarse to fine", ":material/stacks:",
             "A coarse-to-fine EBM samples a 7×7 digit, hands it up to 14×14 and then 28×28. Play the cascade stage "
             "by stage, slide the fade weight β of a growing network, replay how it grew, race it against the "
             "short-run model on the same budget of gradient evaluations, restore noisy or masked digits, and turn "
             "Fashion-MNIST images or your own picture into digits.",
             "a digit drawn at 7×7 first, then sharpened at 14×14 and 28×28"),
    PageInfo("views/semantic_texture.py", "Semantic vs texture", ":material/layers:",
             "A Denoising-EBM samples in two stages: Langevin on a latent code finds what to draw, Langevin on pixels "
             "adds how it looks. Play both stages beside sampling from noise, watch the denoiser at each noise level, "
             "follow the latent chains over the digits' codes, and score out-of-distribution images.",
             "a code that decides which digit, then pixel steps that decide how it looks"),
    PageInfo("views/triangle.py", "Divergence triangle", ":material/change_history:",
             "A generator, an inference model and an energy model trained together. See held-out digits "
             "reconstructed, occluded digits recovered, the generator under the paper's prior and under a prior "
             "learned from the digits' codes, samples refined by Langevin on the energy, paths through the latent "
             "space, and the three KL terms that tie the models together.",
             "three models that teach each other: digits encoded, rebuilt, drawn and refined"),
    PageInfo("views/ebgan.py", "EBGAN", ":material/compare:",
             "A generator against an autoencoder whose reconstruction error is the energy. Draw labelled samples and "
             "watch the generator over training, see what the energy does to digits, fakes and noise, compare "
             "training with and without the pulling-away term for mode collapse, and run Langevin on the energy.",
             "an energy used as a GAN's critic, and what happens to variety without the pulling-away term"),
    PageInfo("views/learning_dynamics.py", "Learning dynamics", ":material/trending_up:",
             "Watch models learn: deep FRAME trained by maximum likelihood (the KL flow) and by a Wasserstein (JKO) "
             "flow, side by side on one iteration slider. See where one energy collapses while the other holds, "
             "whether few-shot samples are copies of their 5 or 20 training digits, a GAN on the same 5 digits, and "
             "train a model live.",
             "two ways of training the same energy, one that collapses and one that holds"),
    PageInfo("views/anomaly.py", "Anomaly detection", ":material/troubleshoot:",
             "Which images does an energy find typical? AUROC of every shipped energy (and your own) against "
             "Fashion-MNIST, noise, constant images, blends of two digits and transformed digits; one model's score "
             "histograms and ROC curves; and where your own digit, uploaded or edited (rotated, erased, a stroke "
             "added), falls.",
             "which images an energy finds typical, and how well that tells digits from everything else"),
    PageInfo("views/landscape.py", "Energy landscape", ":material/landscape:",
             "Maps of an energy's valleys: descend from digits to local minima, measure the barriers between them and "
             "see them as a disconnectivity graph. Cut it into basins, follow the path between two minima, find "
             "where your own digit lands, make a map with your own settings, and set two maps side by side.",
             "the energy's valleys as a tree: which digits share a basin and how high the passes are"),
    PageInfo("views/training_monitor.py", "Training monitor", ":material/monitor_heart:",
             "Watch any EBM train: follow a run's TensorBoard log live (ebmviz's trainers write one; your own loop "
             "through ebmviz.training_log or your own SummaryWriter) — energies of data, samples and noise, their "
             "gap, loss, gradient norm, learning rate, the negatives and their saturation and class entropy over "
             "training, alerts with their usual remedies, and a second run overlaid.", ""),
    PageInfo("views/model_zoo.py", "Models", ":material/inventory_2:",
             "Every model: the shipped ones with how they were trained (command, data, wall time, device, size, "
             "commit) and the stored quality of their samples, those of added folders, and your own (file, "
             "factory, weights, shape); one model's training curves and samples over training; two models side "
             "by side on one seed and one gradient budget.", ""),
)


ROUTE = tuple(p for p in PAGES if p.see)  # the lesson's stops, in order


def next_stop(script: str) -> PageInfo | None:
    """The stop after the page ``script`` on the lesson route (the first stop for Home); None after the last."""
    stops = [p.script for p in ROUTE]
    if script not in stops:
        return ROUTE[0] if script == PAGES[0].script else None
    i = stops.index(script)
    return ROUTE[i + 1] if i + 1 < len(ROUTE) else None


def navigation():
    """``st.navigation`` over ``PAGES``, the first page the default, every page listed (Streamlit folds a list of more
    than ten behind "View more", which hid the Training monitor and Models)."""
    return st.navigation([st.Page(p.script, title=p.title, icon=p.icon, default=i == 0) for i, p in enumerate(PAGES)],
                         expanded=True)
