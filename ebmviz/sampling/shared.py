"""One batched Langevin loop per energy, shared by many clients (the app's sessions).

The loop's thread gathers the clients that want steps, evaluates every one's points (``LangevinChains.points``) in
**one** forward and backward pass, and gives each client its slice (``LangevinChains.take``). Each client keeps its
own settings (ULA or MALA, s, σ, clip, box) and its own random generator, so its chains are the ones it would get
alone, to float rounding (a batch of another size may sum in another order). The contract is a batching engine's
(Ray Serve's ``@serve.batch(max_batch_size, batch_wait_timeout_s)``): a list of requests in, a list of results out,
a bounded wait for the batch to fill.

- A client joins with ``steps(x0, config, seed)``, a step generator like ``langevin_steps``; ``LiveRun`` takes it
  (``LiveRun(…, sampler=shared)``). The loop runs a client's chains up to ``ahead`` steps beyond what the client has
  taken, so a session's steps are ready when it asks and its drawing never keeps its chains out of a batch; a
  paused session takes nothing, its buffer fills, and its chains leave the batches. The generator's end (its last
  step, ``close`` or garbage collection: a reset, new settings, a closed tab) removes the client.
- The loop waits at most ``max_wait`` for clients that wanted steps recently to want more (the rest of a batch),
  never for a client's recording or drawing, which happen in the client's own thread.
- Bounded: at most ``max_chains`` chains per client and ``max_clients`` clients (``SamplerFull``, a ``ValueError``,
  with a message), and at most ``AHEAD_BYTES`` of buffered states per client. A client whose energy evaluation
  raises gets the exception at that step; the others in its batch are evaluated again without it.
"""

from __future__ import annotations

import threading
import time
import weakref
from collections import deque
from collections.abc import Iterator

import torch

from ebmviz.sampling.chains import Energy, Step, energy_and_grad
from ebmviz.sampling.langevin_dynamics import LangevinChains, LangevinConfig

MAX_CHAINS = 64  # chains one client may run (the Langevin page's most)
MAX_CLIENTS = 32  # clients one loop serves at once
MAX_WAIT = 0.003  # s: how long the loop waits for recently active clients to fill the batch
RECENT = 0.25  # s: a client that wanted steps within this long is expected to want more soon
AHEAD = 32  # steps the loop may run a client's chains beyond what it has taken …
AHEAD_BYTES = 16 << 20  # … holding at most this many bytes of its buffered states


class SamplerFull(ValueError):
    """The shared loop cannot take this client (too many chains, or too many clients)."""


def check_caps(chains: int, max_chains: int, clients: int, max_clients: int) -> None:
    """Raise ``SamplerFull`` with a message when a client of ``chains`` chains cannot join a loop serving
    ``clients``."""
    if chains > max_chains:
        raise SamplerFull(f"{chains} chains is over the shared sampler's cap of {max_chains} per session: run fewer "
                          "chains")
    if clients >= max_clients:
        raise SamplerFull(f"the server is sampling for {clients} sessions on this model, its cap: try again when one "
                          "of them stops")


class _Client:
    def __init__(self, chains: LangevinChains, ahead: int):
        self.chains = chains
        self.ahead = ahead
        self.ready: deque[Step | BaseException] = deque()  # steps made and not yet taken; an error ends it
        self.wanted_at = 0.0  # when it last wanted steps

    @property
    def wants(self) -> bool:
        """Whether the loop should step it now: not finished, not failed, its buffer not full."""
        failed = bool(self.ready) and isinstance(self.ready[-1], BaseException)
        return not self.chains.done and not failed and len(self.ready) < self.ahead


class SharedSampler:
    """The loop for one ``energy`` (callable (B, ...) -> (B,), p ∝ exp(−E)); its thread runs while it has clients."""

    def __init__(self, energy: Energy, *, max_chains: int = MAX_CHAINS, max_clients: int = MAX_CLIENTS,
                 max_wait: float = MAX_WAIT, ahead: int = AHEAD):
        self.energy, self.max_chains, self.max_clients = energy, max_chains, max_clients
        self.max_wait, self.ahead = max_wait, ahead
        self._clients: list[_Client] = []
        self._cond = threading.Condition()
        self._running = False  # the loop's thread is running (changed under the lock only)
        self._stopped = False
        self.batches = 0  # evaluations run, and the chains in them (for benchmarks and tests)
        self.batched_chains = 0

    @property
    def clients(self) -> int:
        with self._cond:
            return len(self._clients)

    def steps(self, x0: torch.Tensor, config: LangevinConfig, seed: int = 0) -> Iterator[Step]:
        """The steps of ``config.n_steps`` Langevin updates of the chains x0 (B, ...), made by the shared loop.

        Raises ``SamplerFull`` (when the generator is created) if the client cannot be taken.
        """
        with self._cond:
            check_caps(x0.shape[0], self.max_chains, len(self._clients), self.max_clients)
        state_bytes = x0.element_size() * x0.numel()
        ahead = max(1, min(self.ahead, AHEAD_BYTES // max(1, state_bytes)))
        return self._run(_Client(LangevinChains(x0, config, seed), ahead))

    def _run(self, client: _Client) -> Iterator[Step]:
        """The client's steps; it joins the loop at its first step and leaves when its chains are done or the
        generator is closed (a generator never started holds no place)."""
        with self._cond:
            client.wanted_at = time.monotonic()
            self._clients.append(client)
            self._start()
        try:
            for _ in range(client.chains.config.n_steps):
                yield self._ask(client)
        finally:
            self._leave(client)

    def _ask(self, client: _Client) -> Step:
        """The client's next step: at once when the loop has run ahead, else when the loop has made it."""
        with self._cond:
            while not client.ready:
                self._cond.wait()
            item = client.ready.popleft()
            client.wanted_at = time.monotonic()
            self._cond.notify_all()  # its buffer has room again
        if isinstance(item, BaseException):
            raise item
        return item

    def _leave(self, client: _Client) -> None:
        with self._cond:
            if client in self._clients:
                self._clients.remove(client)
                self._cond.notify_all()

    def stop(self) -> None:
        with self._cond:
            self._stopped = True
            self._cond.notify_all()

    def _start(self) -> None:
        """Under the lock: start the loop's thread unless it runs (it ends, under the lock, when no client is left)."""
        if not self._running:
            self._running, self._stopped = True, False
            ref = weakref.ref(self)  # the thread must not keep the sampler alive
            threading.Thread(target=_loop, args=(ref, self._cond), daemon=True, name="ebmviz-shared-sampler").start()

    def _batch(self) -> list[_Client] | None:
        """Under the lock: wait until a client wants steps, then up to ``max_wait`` for the other recent ones; the
        clients to step (None: stop)."""
        while not self._stopped and self._clients and not any(c.wants for c in self._clients):
            self._cond.wait(timeout=1.0)
        if self._stopped or not self._clients:
            self._running = False  # nobody left: the thread ends (the next client starts another)
            return None
        deadline = time.monotonic() + self.max_wait
        while True:
            now = time.monotonic()
            late = [c for c in self._clients if not c.wants and not c.chains.done and now - c.wanted_at < RECENT
                    and not c.ready]
            if not late or now >= deadline:
                break
            self._cond.wait(timeout=deadline - now)
        return [c for c in self._clients if c.wants]

    def _serve(self, batch: list[_Client]) -> None:
        """One evaluation for every client of ``batch``; each gets its next step (MALA's first: nothing yet)."""
        results = step_batch(self.energy, [c.chains for c in batch])
        self.batches += 1
        self.batched_chains += sum(len(c.chains.x) for c in batch)
        with self._cond:
            for c, r in zip(batch, results, strict=True):
                if r is not None:  # None: MALA's start, no step yet
                    c.ready.append(r)
                if c.chains.done or isinstance(r, BaseException):
                    if c in self._clients:  # its last step is made: the loop is done with it
                        self._clients.remove(c)
            self._cond.notify_all()


def step_batch(energy: Energy, batch: list[LangevinChains]) -> list[Step | None | Exception]:
    """One step of every chain set in ``batch`` through **one** evaluation of ``energy`` on all their points: each
    set's ``Step`` (None: MALA's first evaluation, no step yet), or the exception its own points raised (the others
    are then evaluated again without them)."""
    points = [c.points() for c in batch]
    sizes = [len(p) for p in points]
    try:
        e, g = energy_and_grad(energy, torch.cat(points) if len(points) > 1 else points[0])
        parts = list(zip(e.split(sizes), g.split(sizes), strict=True))
    except Exception:  # noqa: BLE001 — evaluate one by one: only the set whose points fail gets the error
        parts = []
        for p in points:
            try:
                parts.append(energy_and_grad(energy, p))
            except Exception as exc:  # noqa: BLE001 — the client's LiveRun reports it
                parts.append(exc)
    results: list[Step | None | Exception] = []
    for c, part in zip(batch, parts, strict=True):
        try:
            results.append(part if isinstance(part, BaseException) else c.take(*part))
        except Exception as exc:  # noqa: BLE001
            results.append(exc)
    return results


def _loop(ref: weakref.ref, cond: threading.Condition) -> None:
    while True:
        sampler = ref()
        if sampler is None:
            return
        with cond:
            batch = sampler._batch()
        if batch is None:
            return
        if batch:
            sampler._serve(batch)
        del sampler, batch
