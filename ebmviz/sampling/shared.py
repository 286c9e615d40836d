"""One batched Langevin loop per energy, shared by many clients (the app's sessions).

A client asks for its chains' next step; the loop's thread gathers the steps asked for, evaluates every client's
points (``LangevinChains.points``) in **one** forward and backward pass, and hands each client its slice
(``LangevinChains.take``). Each client keeps its own settings (ULA or MALA, s, σ, clip, box) and its own random
generator, so its chains are the ones it would get alone, to float rounding (a batch of another size may sum in
another order). The contract is a batching engine's (Ray Serve's ``@serve.batch(max_batch_size,
batch_wait_timeout_s)``): a list of requests in, a list of results out, a bounded wait for the batch to fill.

- A client joins with ``steps(x0, config, seed)``, a step generator like ``langevin_steps``; ``LiveRun`` takes it
  (``LiveRun(…, sampler=shared)``). Its chains are in a batch only while it asks for a step: a paused, reset or
  closed session asks for nothing, and its generator's end (``close`` or garbage collection) removes it.
- The loop waits at most ``max_wait`` for the clients that asked recently to ask again (the rest of a batch),
  never for a client's recording or drawing, which happen in the client's own thread after it has its step.
- Bounded: at most ``max_chains`` chains per client and ``max_clients`` clients; a client over either gets
  ``SamplerFull`` (a ``ValueError``) with a message. A client whose energy evaluation raises gets the exception;
  the others in its batch are evaluated again without it.
"""

from __future__ import annotations

import threading
import time
import weakref
from collections.abc import Iterator

import torch

from ebmviz.sampling.chains import Energy, Step, energy_and_grad
from ebmviz.sampling.langevin_dynamics import LangevinChains, LangevinConfig

MAX_CHAINS = 64  # chains one client may run (the Langevin page's most)
MAX_CLIENTS = 32  # clients one loop serves at once
MAX_WAIT = 0.003  # s: how long the loop waits for recently active clients to fill the batch
RECENT = 0.25  # s: a client that asked within this long is expected to ask again soon


class SamplerFull(ValueError):
    """The shared loop cannot take this client (too many chains, or too many clients)."""


class _Client:
    def __init__(self, chains: LangevinChains):
        self.chains = chains
        self.pending = False  # asked for a step not yet made
        self.result: Step | BaseException | None = None
        self.asked_at = 0.0


class SharedSampler:
    """The loop for one ``energy`` (callable (B, ...) -> (B,), p ∝ exp(−E)); its thread starts with the first client
    and ends when the sampler is garbage collected or ``stop``ped."""

    def __init__(self, energy: Energy, *, max_chains: int = MAX_CHAINS, max_clients: int = MAX_CLIENTS,
                 max_wait: float = MAX_WAIT):
        self.energy, self.max_chains, self.max_clients, self.max_wait = energy, max_chains, max_clients, max_wait
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
        if x0.shape[0] > self.max_chains:
            raise SamplerFull(f"{x0.shape[0]} chains is over the shared sampler's cap of {self.max_chains} per "
                              "session: run fewer chains")
        with self._cond:
            if len(self._clients) >= self.max_clients:
                raise SamplerFull(f"the server is sampling for {len(self._clients)} sessions on this model, its "
                                  f"cap: try again when one of them stops")
        return self._run(_Client(LangevinChains(x0, config, seed)))

    def _run(self, client: _Client) -> Iterator[Step]:
        """The client's steps; it joins the loop at its first step and leaves when the generator ends or is closed
        (a generator never started holds no place)."""
        with self._cond:
            self._clients.append(client)
            self._start()
        try:
            while not client.chains.done:
                step = self._ask(client)
                if client.chains.done:  # the last step: leave now (a collector stops asking once it has it)
                    self._leave(client)
                yield step
        finally:
            self._leave(client)

    def _leave(self, client: _Client) -> None:
        with self._cond:
            if client in self._clients:
                self._clients.remove(client)
                self._cond.notify_all()

    def _ask(self, client: _Client) -> Step:
        with self._cond:
            client.pending, client.result, client.asked_at = True, None, time.monotonic()
            self._cond.notify_all()
            while client.result is None:
                self._cond.wait()
            result, client.result = client.result, None
        if isinstance(result, BaseException):
            raise result
        return result

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
        """Under the lock: wait for a step to be asked, then up to ``max_wait`` for the other recent clients; the
        clients to serve (None: stop)."""
        while not self._stopped and not any(c.pending for c in self._clients):
            if not self._clients:
                break
            self._cond.wait(timeout=1.0)
        if self._stopped or not self._clients:
            self._running = False  # nobody left: the thread ends (the next client starts another)
            return None
        deadline = time.monotonic() + self.max_wait
        while True:
            now = time.monotonic()
            waiting = [c for c in self._clients if not c.pending and now - c.asked_at < RECENT]
            if not waiting or now >= deadline:
                break
            self._cond.wait(timeout=deadline - now)
        return [c for c in self._clients if c.pending]

    def _serve(self, batch: list[_Client]) -> None:
        """One evaluation for every client of ``batch``; each gets its step (or, for MALA's first, nothing yet)."""
        points = [c.chains.points() for c in batch]
        try:
            e, g = energy_and_grad(self.energy, torch.cat(points) if len(points) > 1 else points[0])
            parts = list(zip(e.split([len(p) for p in points]), g.split([len(p) for p in points]), strict=True))
        except Exception:  # noqa: BLE001 — evaluate one by one: only the client whose points fail gets the error
            parts = []
            for p in points:
                try:
                    parts.append(energy_and_grad(self.energy, p))
                except Exception as exc:  # noqa: BLE001 — the client's LiveRun reports it
                    parts.append(exc)
        self.batches += 1
        self.batched_chains += sum(len(p) for p in points)
        results = []
        for c, part in zip(batch, parts, strict=True):
            if isinstance(part, BaseException):
                results.append(part)
                continue
            try:
                results.append(c.chains.take(*part))
            except Exception as exc:  # noqa: BLE001
                results.append(exc)
        with self._cond:
            for c, r in zip(batch, results, strict=True):
                if r is not None:  # None: MALA's start, the client stays pending for its first step
                    c.pending, c.result = False, r
            self._cond.notify_all()


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
