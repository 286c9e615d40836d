"""Reading a run's TensorBoard event files incrementally and fast, as a live page needs them.

An event file is a sequence of TFRecords — ``length`` (uint64 LE), a 4-byte CRC of it, ``length`` bytes of a
serialised ``Event`` protobuf, a 4-byte CRC of those — appended as training goes. ``EventReader`` remembers how far
it read each file and reads only what was appended since (``refresh``). Plain scalars (``add_scalar``: an Event of
wall_time, step and one ``simple_value``) are decoded in bulk with numpy: the record boundaries are walked once in
Python, then every scalar record's wall time, step, tag and value are gathered as arrays. Every other record (the
file header, a purge marker, images, tensors, another writer's layout) goes through TensorBoard's protobuf classes.

Robustness:
- a record still being written (the file ends inside it) is left for the next refresh; once a newer event file
  exists, that record was cut by a killed writer: it is skipped, with a note;
- a record whose length is absurd (above ``MAX_RECORD``) or that does not parse ends the reading of that file,
  with a note (the CRCs are not checked: a CRC-32C in pure Python would cost more than the rest of the reading);
- ``SessionLog.START`` at step k (what ``SummaryWriter(purge_step=k)`` writes when a run resumes) drops every
  value read before it with a step ≥ k, as TensorBoard does: a resumed run shows one value per step.
"""

from __future__ import annotations

import math
import os
import re
import struct
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

EVENT_GLOB = "events.out.tfevents.*"
MAX_RECORD = 64 << 20  # a longer record is taken as corruption (64 MiB: more than any image batch a run logs)
_HEAD = struct.Struct("<Q")


@dataclass
class Series:
    """One scalar tag: (n,) arrays in the order read (steps nondecreasing in a well-behaved log)."""

    steps: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    values: np.ndarray = field(default_factory=lambda: np.zeros(0, np.float64))
    wall: np.ndarray = field(default_factory=lambda: np.zeros(0, np.float64))  # seconds since the epoch

    def extend(self, steps: np.ndarray, values: np.ndarray, wall: np.ndarray) -> None:
        self.steps = np.concatenate([self.steps, steps.astype(np.int64)])
        self.values = np.concatenate([self.values, values.astype(np.float64)])
        self.wall = np.concatenate([self.wall, wall.astype(np.float64)])

    def purge(self, step: int) -> None:
        """Drop the values at steps ≥ ``step`` (a resumed run's purge marker)."""
        keep = self.steps < step
        self.steps, self.values, self.wall = self.steps[keep], self.values[keep], self.wall[keep]


@dataclass(frozen=True)
class ImageRef:
    """Where one image summary sits, to decode it only when a page shows it."""

    step: int
    file: Path
    offset: int  # of the record's serialised Event in the file
    length: int


@dataclass
class _File:
    path: Path
    offset: int = 0  # bytes read and understood so far
    broken: bool = False  # stopped at an unreadable record


def _written_order(path: Path) -> list:
    """Sort key of an event file's name, events.out.tfevents.<seconds>.<host>.<pid>.<n>: its numbers compared as
    numbers (so ….10 comes after ….9 of the same second)."""
    return [(0, int(t), "") if t.isdigit() else (1, 0, t) for t in re.split(r"(\d+)", path.name)]


def _varints(cols: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Decode one little-endian base-128 varint per row of ``cols`` (n, 10) uint8 -> (values (n,), byte counts (n,))."""
    more = cols >= 0x80
    count = np.argmin(more, axis=1) + 1  # the first byte without the continuation bit ends it
    shifts = (7 * np.arange(cols.shape[1], dtype=np.uint64))[None, :]
    used = np.arange(cols.shape[1])[None, :] < count[:, None]
    parts = np.where(used, (cols & 0x7F).astype(np.uint64) << shifts, np.uint64(0))
    return parts.sum(axis=1).astype(np.int64), count


class EventReader:
    """The scalars and image summaries of the event files in one folder, read incrementally.

    ``scalars``: tag -> ``Series``; ``images``: tag -> list of ``ImageRef``; ``notes``: what was skipped or could not
    be read, in words. ``refresh()`` reads what was appended (and new files) and returns the number of records read.
    """

    def __init__(self, folder: str | os.PathLike):
        self.folder = Path(folder)
        self.scalars: dict[str, Series] = {}
        self.images: dict[str, list[ImageRef]] = {}
        self.notes: list[str] = []
        self._files: dict[Path, _File] = {}
        self.records = 0

    def files(self) -> list[Path]:
        """The folder's event files in the order they were written (their names begin with the creation time)."""
        try:
            return sorted((p for p in self.folder.glob(EVENT_GLOB) if p.is_file()), key=_written_order)
        except OSError as exc:
            self._note(f"cannot list {self.folder.name}: {exc.strerror or exc}")
            return []

    def refresh(self) -> int:
        before = self.records
        paths = self.files()
        for k, path in enumerate(paths):
            f = self._files.setdefault(path, _File(path))
            if not f.broken:
                self._read(f, last=k == len(paths) - 1)
        return self.records - before

    @property
    def last_step(self) -> int | None:
        """The largest step of any scalar read so far."""
        tops = [int(s.steps.max()) for s in self.scalars.values() if len(s.steps)]
        return max(tops) if tops else None

    def _note(self, text: str) -> None:
        if text not in self.notes:
            self.notes.append(text)

    def _read(self, f: _File, last: bool) -> None:
        try:
            with open(f.path, "rb") as fh:
                fh.seek(f.offset)
                chunk = fh.read()
        except OSError as exc:
            self._note(f"cannot read {f.path.name}: {exc.strerror or exc}")
            f.broken = True
            return
        starts, lengths, end, problem = _frame(chunk)
        if problem:
            self._note(f"{f.path.name}: {problem} at byte {f.offset + end}; the rest of this file is skipped")
            f.broken = True
        elif end < len(chunk) and not last:
            self._note(f"{f.path.name}: its last record was cut off (a writer stopped mid-record) and is skipped")
            f.broken = True  # a newer file exists: nothing more will come here
        if len(starts):
            self._decode(f, np.frombuffer(chunk, np.uint8), starts, lengths)
        f.offset += end

    def _decode(self, f: _File, buf: np.ndarray, starts: np.ndarray, lengths: np.ndarray) -> None:
        """Decode the plain scalar records in bulk and the rest one by one, applied in file order, so a purge
        marker drops only what was read before it."""
        plain, (rec, tag, val) = _plain_scalars(buf, starts, lengths)
        pad = np.concatenate([buf, np.zeros(16, np.uint8)])
        wall = pad[(starts + 1)[:, None] + np.arange(8)[None, :]].copy().view("<f8").ravel()
        steps, _ = _varints(pad[(starts + 10)[:, None] + np.arange(10)[None, :]])
        steps = np.where(pad[starts + 9] == 0x10, steps, 0)
        prev = 0
        for k in [*np.flatnonzero(~plain).tolist(), len(starts)]:
            if k > prev:  # the plain records prev … k − 1
                lo, hi = np.searchsorted(rec, [prev, k])
                if hi > lo:
                    r = rec[lo:hi]
                    self._add_scalars(tag[lo:hi], steps[r], val[lo:hi], wall[r])
            if k < len(starts):
                s, n = int(starts[k]), int(lengths[k])
                self._other(f, buf[s:s + n].tobytes(), f.offset + s)
            prev = k + 1
        self.records += len(starts)

    def _add_scalars(self, tags: np.ndarray, steps: np.ndarray, values: np.ndarray, wall: np.ndarray) -> None:
        order = np.argsort(tags, kind="stable") if len(tags) > 1 else np.arange(len(tags))
        tags, steps, values, wall = tags[order], steps[order], values[order], wall[order]
        cuts = np.flatnonzero(tags[1:] != tags[:-1]) + 1
        for lo, hi in zip([0, *cuts.tolist()], [*cuts.tolist(), len(tags)], strict=True):
            if hi > lo:
                self.scalars.setdefault(str(tags[lo]), Series()).extend(steps[lo:hi], values[lo:hi], wall[lo:hi])

    def _other(self, f: _File, data: bytes, offset: int) -> None:
        from tensorboard.compat.proto.event_pb2 import Event, SessionLog

        try:
            ev = Event.FromString(data)
        except Exception:  # noqa: BLE001 — protobuf raises its own DecodeError; any failure is one bad record
            self._note(f"{f.path.name}: a record at byte {offset} is not an event and was skipped")
            return
        if ev.HasField("session_log") and ev.session_log.status == SessionLog.START:
            for s in self.scalars.values():
                s.purge(ev.step)
            for tag, refs in self.images.items():
                self.images[tag] = [r for r in refs if r.step < ev.step]
            return
        if not ev.HasField("summary"):
            return
        for v in ev.summary.value:
            kind = v.WhichOneof("value")
            plugin = v.metadata.plugin_data.plugin_name if v.HasField("metadata") else ""
            if kind == "simple_value":
                self._add_scalars(np.array([v.tag]), np.array([ev.step]), np.array([v.simple_value]),
                                  np.array([ev.wall_time]))
            elif kind == "image" or (kind == "tensor" and plugin == "images"):
                self.images.setdefault(v.tag, []).append(ImageRef(int(ev.step), f.path, offset, len(data)))
            elif kind == "tensor" and plugin == "scalars" and v.tensor.float_val:
                self._add_scalars(np.array([v.tag]), np.array([ev.step]), np.array([v.tensor.float_val[0]]),
                                  np.array([ev.wall_time]))
            elif kind == "tensor" and plugin == "scalars" and v.tensor.double_val:
                self._add_scalars(np.array([v.tag]), np.array([ev.step]), np.array([v.tensor.double_val[0]]),
                                  np.array([ev.wall_time]))

def image_value(ref: ImageRef):
    """The ``Summary.Value`` of an image summary (``.image`` or ``.tensor``), read from its file now."""
    from tensorboard.compat.proto.event_pb2 import Event

    with open(ref.file, "rb") as fh:
        fh.seek(ref.offset)
        ev = Event.FromString(fh.read(ref.length))
    return next(v for v in ev.summary.value if v.WhichOneof("value") in ("image", "tensor"))


def _frame(chunk: bytes) -> tuple[np.ndarray, np.ndarray, int, str | None]:
    """Walk the TFRecord boundaries of ``chunk``: (data starts (n,), lengths (n,), bytes consumed, problem or None).
    A record the chunk ends inside is not consumed (it may still be being written)."""
    starts, lengths = [], []
    pos, size, unpack = 0, len(chunk), _HEAD.unpack_from
    while pos + 12 <= size:
        (n,) = unpack(chunk, pos)
        if n > MAX_RECORD:
            return np.array(starts, np.int64), np.array(lengths, np.int64), pos, f"a record claims {n:,} bytes"
        if pos + 16 + n > size:
            break
        starts.append(pos + 12)
        lengths.append(n)
        pos += 16 + n
    return np.array(starts, np.int64), np.array(lengths, np.int64), pos, None


def _plain_scalars(buf: np.ndarray, starts: np.ndarray, lengths: np.ndarray):
    """Which records are plain scalar events, and their values.

    A plain record is ``wall_time, [step], summary{value{tag, simple_value}, …}``: one value (``add_scalar``) or many
    (``ebmviz.training_log`` writes a step's scalars as one event). The summary's values are walked for all records
    at once, one value per pass. Returns (is_plain (n,) bool, entries), entries a tuple of (n_values,) arrays
    (record index, tag, value) of the plain records, in record order.
    """
    n = len(starts)
    if n == 0:
        return np.zeros(0, bool), (np.zeros(0, np.int64), np.zeros(0, object), np.zeros(0))
    pad = np.concatenate([buf, np.zeros(160, np.uint8)])  # reads past a short record's end stay in bounds
    at = lambda offsets, width: pad[offsets[:, None] + np.arange(width)[None, :]]  # noqa: E731
    ok = (pad[starts] == 0x09) & (lengths >= 20)  # field 1, fixed64: wall_time
    has_step = pad[starts + 9] == 0x10  # field 2, varint: step (absent when 0)
    _, count = _varints(at(starts + 10, 10))
    p = starts + 9 + np.where(has_step, 1 + count, 0)  # the summary's key: field 5, length-delimited
    size, c = _varints(at(p + 1, 3))
    pos, end = p + 1 + c, p + 1 + c + size
    ok &= (pad[p] == 0x2A) & (c < 3) & (end == starts + lengths)
    recs, tags, vals = [], [], []
    active = ok.copy()
    while True:
        idx = np.flatnonzero(active & (pos < end))
        if not len(idx):
            break
        q = pos[idx]
        vlen, tl = pad[q + 1].astype(np.int64), pad[q + 3].astype(np.int64)
        # value = field 1 (length < 128) of tag = field 1 (length < 128) and simple_value = field 2, fixed32
        good = (pad[q] == 0x0A) & (pad[q + 2] == 0x0A) & (vlen < 0x80) & (tl < 0x80) & (vlen == tl + 7)
        good &= pad[q + 4 + tl] == 0x15
        ok[idx[~good]] = False
        active[idx[~good]] = False
        idx, q, vlen, tl = idx[good], q[good], vlen[good], tl[good]
        value = np.zeros(len(idx))
        name = np.full(len(idx), "", dtype=object)
        if len(idx):
            value = at(q + 5 + tl, 4).copy().view("<f4").ravel().astype(np.float64)
            for width in np.unique(tl):
                sel = np.flatnonzero(tl == width)
                if width == 0:
                    continue
                rows = np.ascontiguousarray(at(q[sel] + 4, int(width))).view(f"V{int(width)}").ravel()
                uniq, inverse = np.unique(rows, return_inverse=True)
                names = np.array([u.tobytes().decode("utf-8", "replace") for u in uniq], dtype=object)
                name[sel] = names[inverse.ravel()]
        recs.append(idx)
        tags.append(name)
        vals.append(value)
        pos[idx] += 2 + vlen
    if not recs:
        return ok, (np.zeros(0, np.int64), np.zeros(0, object), np.zeros(0))
    rec, tag, val = np.concatenate(recs), np.concatenate(tags), np.concatenate(vals)
    keep = ok[rec]  # a record that failed at a later value goes to the slow path whole
    order = np.argsort(rec[keep], kind="stable")
    return ok, (rec[keep][order], tag[keep][order], val[keep][order])


def downsample(steps: np.ndarray, values: np.ndarray, points: int = 2000) -> tuple[np.ndarray, np.ndarray]:
    """At most about ``points`` points that keep a series' shape: each of points/2 buckets of consecutive values
    gives its minimum and its maximum (in step order), so spikes survive. Non-finite values are kept as they are."""
    n = len(steps)
    if n <= points:
        return steps, values
    buckets = max(1, points // 2)
    size = int(math.ceil(n / buckets))
    blocks = np.full(buckets * size, np.nan)
    blocks[:n] = np.where(np.isfinite(values), values, np.nan)
    blocks = blocks.reshape(buckets, size)  # (buckets, size), NaN where a value is missing or not finite
    start = np.arange(buckets) * size
    missing = np.isnan(blocks)
    lo = np.minimum(np.argmin(np.where(missing, np.inf, blocks), axis=1) + start, n - 1)
    hi = np.minimum(np.argmax(np.where(missing, -np.inf, blocks), axis=1) + start, n - 1)
    some = ~missing.all(axis=1)
    bad = np.flatnonzero(~np.isfinite(values))[:points]  # a non-finite value is an event: never averaged away
    keep = np.unique(np.concatenate([lo[some], hi[some], [0, n - 1], bad]))
    return steps[keep], values[keep]
