"""The shared Langevin loop in a process of its own: ``ProcessSampler`` keeps ``SharedSampler``'s contract (``steps``
gives a client's step generator; one forward and backward pass per step for every client of the batch), but its loop
runs in a child process, out of the server's interpreter lock.

Why a process: in the server, the loop's thread shares one interpreter lock with every session's drawing (the
evaluator, images, charts, Streamlit's messages). With four sessions playing, a batch that takes 10 ms alone took
68–90 ms, half of it waiting for the lock (``benchmarks/load.py --scaling``). A child process has its own.

How it talks: one socket pair, messages pickled by ``multiprocessing.connection`` between these two processes only
(never read from a file or from a user).

- server → child: ``(load, threads)`` first; then ``("join", id, x0, device, config, seed, ahead)`` (x0 (B, ...)
  a float32 numpy array), ``("took", id)`` after each step a client takes, ``("leave", id)``, ``("stop",)``;
- child → server: ``("steps", [(id, ok, step or error), …])`` once per batch, a step as numpy arrays (``_pack``),
  an error (ok False) as (type name, message); ``("failed", why)`` when ``load()`` raised.

The child runs a client up to ``ahead`` steps past what it has taken: when one client has half or less of that
left, every client with room gets a step in the batch, so that the clients refill together in full batches. The
child is a fresh ``python -c`` (no fork of a threaded server, and no re-run
of the server's main module as ``multiprocessing``'s spawn would do) with the server's ``sys.path`` and environment;
it builds its own energy with ``load()`` (picklable: e.g. ``functools.partial(catalogue.load, name, device)``). It
ends when the server has had no client for ``idle_exit`` seconds (its memory goes back; the next client starts a new
one) or when its socket closes. A child that dies fails its clients' next steps with a message, and the next client
starts a new one.
"""

from __future__ import annotations

import builtins
import itertools
import mmap
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
import weakref
from collections import deque
from collections.abc import Callable, Iterator
from multiprocessing.connection import Connection
from typing import Any

import numpy as np
import torch

from ebmviz.sampling.chains import Energy, Step
from ebmviz.sampling.langevin_dynamics import LangevinChains, LangevinConfig
from ebmviz.sampling.shared import AHEAD, AHEAD_BYTES, MAX_CHAINS, MAX_CLIENTS, check_caps, step_batch

SUPPORTED = os.name == "posix" and hasattr(socket, "send_fds")  # memory handed over a Unix socket

IDLE_EXIT = 120.0  # s without a client before the child process ends
START_SECONDS = 120.0  # s a new child may take to start and build its energy


class SamplerStopped(RuntimeError):
    """The sampler's process ended while a client was waiting for a step."""


class _Box:
    """A client's mailbox in the server: the steps the child sent and it has not taken yet."""

    def __init__(self):
        self.items: deque = deque()
        self.cond = threading.Condition()

    def put(self, item) -> None:
        with self.cond:
            self.items.append(item)
            self.cond.notify()

    def get(self):
        with self.cond:
            while not self.items:
                self.cond.wait()
            return self.items.popleft()


class ProcessSampler:
    """One child process running the batched Langevin loop for the energy ``load()`` builds.

    ``threads``: torch's thread count in the child (default: the server's). Caps as ``SharedSampler``'s:
    ``SamplerFull`` over ``max_chains`` chains per client or ``max_clients`` clients."""

    def __init__(self, load: Callable[[], Energy], *, threads: int | None = None, max_chains: int = MAX_CHAINS,
                 max_clients: int = MAX_CLIENTS, ahead: int = AHEAD, idle_exit: float = IDLE_EXIT):
        self.load, self.threads = load, threads or torch.get_num_threads()
        self.max_chains, self.max_clients, self.ahead, self.idle_exit = max_chains, max_clients, ahead, idle_exit
        self._lock = threading.Lock()  # guards the fields below
        self._send = threading.Lock()  # one message at a time on the pipe (never taken before ``_lock``)
        self._boxes: dict[int, _Box] = {}
        self._ids = itertools.count()
        self._proc: Any = None  # the child (subprocess.Popen) and the server's end of its pipe, while it runs
        self._conn: Any = None
        self._sock: socket.socket | None = None
        self.starts = 0  # children started, batches made and the chains in them (for tests and benchmarks)
        self.batches = self.batched_chains = 0

    @property
    def clients(self) -> int:
        with self._lock:
            return len(self._boxes)

    @property
    def running(self) -> bool:
        with self._lock:
            return self._proc is not None

    def start(self) -> None:
        """Start the child now (it loads the energy), so that a first client does not wait for it."""
        with self._lock:
            self._ensure()

    def stop(self) -> None:
        """End the child; waiting clients get ``SamplerStopped``."""
        with self._lock:
            self._end("the sampler was stopped")

    def steps(self, x0: torch.Tensor, config: LangevinConfig, seed: int = 0) -> Iterator[Step]:
        """The steps of ``config.n_steps`` Langevin updates of the chains x0 (B, ...), made by the child's loop and
        returned on x0's device. Raises ``SamplerFull`` (when the generator is created) if the client cannot be
        taken."""
        with self._lock:
            check_caps(x0.shape[0], self.max_chains, len(self._boxes), self.max_clients)
        state = x0.detach().float().cpu().numpy()
        ahead = max(2, min(self.ahead, AHEAD_BYTES // max(1, state.nbytes)))
        return self._run(state, x0.device, config, seed, ahead)

    def _run(self, x0: np.ndarray, device: torch.device, config: LangevinConfig, seed: int,
             ahead: int) -> Iterator[Step]:
        box, ring = _Box(), _Ring.create(ahead, x0.shape)
        try:
            with self._lock:
                self._ensure()
                cid = next(self._ids)
                self._boxes[cid] = box
                conn, sock = self._conn, self._sock
        except BaseException:
            ring.close()
            raise
        self._post(conn, ("join", cid, x0, str(device), config, seed, ahead), sock, ring.fd)
        try:
            for t in range(config.n_steps):
                item = box.get()
                if isinstance(item, BaseException):
                    raise item
                step = _unpack(item, ring.take(t), device)  # x copied out of its slot before the slot is freed
                self._post(conn, ("took", cid))
                yield step
        finally:
            with self._lock:
                self._boxes.pop(cid, None)
            self._post(conn, ("leave", cid))
            ring.close()

    def _post(self, conn, message, sock: socket.socket | None = None, fd: int | None = None) -> None:
        """Send ``message`` to the child ``conn`` leads to (and then the file descriptor ``fd`` over ``sock``, the
        same socket), unless that child has ended (a client of an ended child learns it from its box). Never under
        ``_lock``: a send can wait for the child, which may be waiting for the reader, which takes ``_lock``."""
        with self._send:
            try:
                conn.send(message)
                if fd is not None:
                    socket.send_fds(sock, [b"r"], [fd])
            except (OSError, ValueError):  # closed: the child ended
                pass

    def _ensure(self) -> None:
        """Under the lock: start the child and its reader thread unless they run."""
        if self._proc is not None and self._proc.poll() is None:
            return
        if self._proc is not None:
            self._end(f"the sampler's process ended (exit code {self._proc.returncode})")
        mine, theirs = socket.socketpair()
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in sys.path if p)}  # the server's imports
        proc = subprocess.Popen([sys.executable, "-c", f"{_CHILD}({theirs.fileno()})"], pass_fds=(theirs.fileno(),),
                                env=env, stdin=subprocess.DEVNULL)
        theirs.close()
        conn = Connection(os.dup(mine.fileno()))  # messages; ``mine`` itself passes the rings' descriptors
        conn.send((self.load, self.threads))
        self._proc, self._conn, self._sock = proc, conn, mine
        self.starts += 1
        threading.Thread(target=_read, args=(weakref.ref(self), conn, proc), daemon=True,
                         name="ebmviz-sampler-reader").start()

    def _end(self, why: str) -> None:
        """Under the lock: stop the child (if any) and fail every waiting client with ``why``."""
        proc, conn, sock = self._proc, self._conn, self._sock
        self._proc = self._conn = self._sock = None
        if conn is not None:
            # a client's send may be stuck on a child stuck sending to the reader, which waits for ``_lock``: then the
            # child is killed, which ends that send, rather than waiting on it under the lock
            polite = self._send.acquire(timeout=1.0)
            if not polite:
                proc.kill()
                self._send.acquire()
            try:
                if polite:
                    conn.send(("stop",))
            except (OSError, ValueError):
                pass
            finally:
                conn.close()
                sock.close()
                self._send.release()
        if proc is not None:
            try:
                proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        for box in self._boxes.values():
            box.put(SamplerStopped(why))

    def _deliver(self, conn, message) -> None:
        """The reader's work: hand each client its step (or its error); a child that could not build its energy
        is ended with its reason."""
        with self._lock:
            if conn is not self._conn:
                return
            if message[0] == "failed":
                self._end(f"the sampler's process could not build the energy: {message[1]}")
                return
            self.batches += 1
            self.batched_chains += sum(len(item[1]) for _, ok, item in message[1] if ok)
            for cid, ok, item in message[1]:
                if (box := self._boxes.get(cid)) is not None:
                    box.put(item if ok else _error(item))

    def _idle(self, conn, since: float) -> bool:
        """The reader's check, every second: end the child after ``idle_exit`` s with no client (True: ended)."""
        with self._lock:
            if conn is not self._conn:
                return True
            if self._boxes or time.monotonic() - since < self.idle_exit:
                return False
            self._end("idle")
            return True

    def _lost(self, conn, proc) -> None:
        with self._lock:
            if conn is self._conn:
                self._end(f"the sampler's process ended unexpectedly (exit code {proc.wait()})")

    def __del__(self):
        conn = getattr(self, "_conn", None)
        if conn is not None:
            try:
                conn.send(("stop",))
            except OSError:
                pass


def _read(ref: weakref.ref, conn, proc) -> None:
    """The server's reader thread for one child: its batches to the clients' boxes, and the idle check."""
    idle_since = time.monotonic()
    while True:
        try:
            ready = conn.poll(1.0)
            message = conn.recv() if ready else None
        except (EOFError, OSError):
            if (sampler := ref()) is not None:
                sampler._lost(conn, proc)
            return
        sampler = ref()
        if sampler is None:
            return
        if message is not None:
            sampler._deliver(conn, message)
        if sampler.clients:
            idle_since = time.monotonic()
        elif sampler._idle(conn, idle_since):
            return
        del sampler


def _pack(step: Step) -> tuple:
    """A ``Step`` but its state as CPU numpy arrays for the socket (the state goes through the client's ring)."""
    def a(v):
        return None if v is None else v.detach().cpu().numpy()
    temperature = step.temperature if isinstance(step.temperature, float) else a(step.temperature)
    return (step.t, a(step.energy), a(step.grad_norm), a(step.step_norm), a(step.accept), a(step.alive),
            a(step.diverged_at), temperature)


def _unpack(packed: tuple, x: np.ndarray, device: torch.device) -> Step:
    """The ``Step`` of a packed one and its state ``x`` (read from the client's ring)."""
    t, energy, grad_norm, step_norm, accept, alive, diverged_at, temperature = packed

    def a(v):
        return None if v is None else torch.from_numpy(v).to(device)
    return Step(t, a(x), a(energy), a(grad_norm), a(step_norm), a(accept), a(alive), a(diverged_at),
                temperature=temperature if isinstance(temperature, float) else a(temperature))


def _error(item: tuple[str, str]) -> Exception:
    """The child's (type name, message) as an exception here: the builtin type of that name, else RuntimeError
    (a user's exception class need not be importable in the server)."""
    kind, text = item
    cls = getattr(builtins, kind, None)
    if isinstance(cls, type) and issubclass(cls, Exception):
        try:
            return cls(text)
        except Exception:  # noqa: BLE001 — a builtin that wants other arguments
            pass
    return RuntimeError(f"{kind}: {text}")


class _Ring:
    """``slots`` states (B, ...) float32 in memory both processes map: the child puts step t's state in slot
    t mod ``slots``, the server copies it out and only then says it took the step, and the child runs at most
    ``slots`` steps ahead of what the server took: a slot is never written while the server may still read it.
    The memory is an anonymous file (``memfd``; elsewhere an unlinked temporary file) whose descriptor goes over the
    socket: nothing is left behind when both ends close it."""

    def __init__(self, fd: int, slots: int, shape: tuple[int, ...]):
        self.fd, self.slots = fd, slots
        self._map = mmap.mmap(fd, slots * int(np.prod(shape)) * 4)
        self._array = np.frombuffer(self._map, np.float32).reshape(slots, *shape)

    @classmethod
    def create(cls, slots: int, shape: tuple[int, ...]) -> _Ring:
        if hasattr(os, "memfd_create"):
            fd = os.memfd_create("ebmviz-chains")
        else:
            with tempfile.TemporaryFile() as f:
                fd = os.dup(f.fileno())
        os.ftruncate(fd, slots * int(np.prod(shape)) * 4)
        return cls(fd, slots, shape)

    def put(self, t: int, x: torch.Tensor) -> None:
        self._array[t % self.slots] = x.detach().cpu().numpy()

    def take(self, t: int) -> np.ndarray:
        return self._array[t % self.slots].copy()

    def close(self) -> None:
        self._array = None  # the view first: a mapping with views cannot close
        self._map.close()
        os.close(self.fd)


class _Remote:
    """A client in the child: its chains, its ring, and how many of its steps the server holds untaken."""

    def __init__(self, chains: LangevinChains, ring: _Ring):
        self.chains, self.ring, self.ahead = chains, ring, ring.slots
        self.held = 0

    @property
    def low(self) -> bool:
        """Half or less of its ring is ahead of the server: time for a batch."""
        return self.held <= self.ahead // 2 and not self.chains.done

    @property
    def room(self) -> bool:
        """Its ring has a free slot: it can join a batch."""
        return self.held < self.ahead and not self.chains.done


_CHILD = "from ebmviz.sampling.sampler_process import child; child"  # the child's command (``-c``), given its fd


def child(fd: int) -> None:
    """The child's loop on the socket ``fd``: take the server's messages, step every client that wants steps in
    one batch, send the steps. The first message is (load, threads)."""
    conn, sock = Connection(fd), socket.socket(fileno=os.dup(fd))
    try:
        load, threads = conn.recv()
    except (EOFError, OSError):
        return
    torch.set_num_threads(threads)
    try:
        energy = load()
    except Exception as exc:  # noqa: BLE001 — the server says why to every client
        conn.send(("failed", f"{type(exc).__name__}: {exc}"))
        return
    clients: dict[int, _Remote] = {}
    out: list = []  # this batch's message: (id, ok, packed step or (error type, message))

    def handle(message) -> bool:
        kind = message[0]
        if kind == "join":
            _, cid, x0, device, config, seed, ahead = message
            ring = _Ring(socket.recv_fds(sock, 1, 1)[1][0], ahead, x0.shape)  # its descriptor follows the message
            try:
                clients[cid] = _Remote(LangevinChains(torch.from_numpy(x0).to(device), config, seed), ring)
            except Exception as exc:  # noqa: BLE001 — that client's error
                ring.close()
                out.append((cid, False, (type(exc).__name__, str(exc))))
        elif kind == "took" and (c := clients.get(message[1])) is not None:
            c.held -= 1
        elif kind == "leave" and (c := clients.pop(message[1], None)) is not None:
            c.ring.close()
        return kind != "stop"

    try:
        while True:
            # a batch is made when some client runs low, and then tops up every client with room: the clients
            # refill together, in full batches, instead of each one alone as the server takes its steps
            due = any(c.low for c in clients.values())
            if conn.poll(0 if due else None):
                while True:
                    if not handle(conn.recv()):
                        return
                    if not conn.poll(0):
                        break
            due = any(c.low for c in clients.values())
            batch = [(cid, c) for cid, c in clients.items() if c.room] if due else []
            results = step_batch(energy, [c.chains for _, c in batch]) if batch else []
            for (cid, c), r in zip(batch, results, strict=True):
                if isinstance(r, Exception):
                    out.append((cid, False, (type(r).__name__, str(r))))
                    clients.pop(cid).ring.close()
                elif r is not None:
                    c.ring.put(r.t - 1, r.x)
                    out.append((cid, True, _pack(r)))
                    c.held += 1
                    if c.chains.done:
                        clients.pop(cid).ring.close()
            if out:
                conn.send(("steps", out))
                out.clear()
    except (EOFError, OSError, KeyboardInterrupt):
        return
