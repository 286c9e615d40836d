"""The monitor's event reader against TensorBoard's own, incremental reading, cut and corrupt records, resumed runs
(purge markers), image summaries, the runs listing and the downsampling of long series."""

import math
import shutil

import numpy as np
import pytest
import torch
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
from tensorboard.compat.proto.summary_pb2 import Summary
from torch.utils.tensorboard import SummaryWriter

from ebmviz.monitor.events import EventReader, downsample, image_value
from ebmviz.monitor.runs import find, list_runs
from ebmviz.training_log import EBMLogger, decode_images


def write_scalars(folder, steps, tags=("a", "energy/gap"), purge_step=None, many=False):
    w = SummaryWriter(str(folder), purge_step=purge_step)
    for step in steps:
        values = {tag: math.sin(step + k) * 10 ** k for k, tag in enumerate(tags)}
        if many:  # one event holding every tag's value, as ebmviz.training_log writes a step
            w._get_file_writer().add_summary(Summary(value=[Summary.Value(tag=t, simple_value=v)
                                                            for t, v in values.items()]), step)
        else:
            for t, v in values.items():
                w.add_scalar(t, v, step)
    w.close()


@pytest.mark.parametrize("many", [False, True])
def test_scalars_match_tensorboards_own_reader(tmp_path, many):
    write_scalars(tmp_path, range(0, 300, 3), tags=("a", "energy/gap", "x" * 100, "é/ünïcode"), many=many)
    r = EventReader(tmp_path)
    r.refresh()
    acc = EventAccumulator(str(tmp_path), size_guidance={"scalars": 0})
    acc.Reload()
    assert sorted(r.scalars) == sorted(acc.Tags()["scalars"])
    for tag in acc.Tags()["scalars"]:
        ev = acc.Scalars(tag)
        np.testing.assert_array_equal(r.scalars[tag].steps, [e.step for e in ev])  # step 0 too (its field is absent)
        np.testing.assert_array_equal(r.scalars[tag].values, np.float32([e.value for e in ev]))  # both float32
        np.testing.assert_array_equal(r.scalars[tag].wall, [e.wall_time for e in ev])
    assert r.notes == []


def test_refresh_reads_only_what_was_appended_and_waits_for_a_record_being_written(tmp_path):
    write_scalars(tmp_path / "w", range(10))
    (src,) = (tmp_path / "w").iterdir()
    data = src.read_bytes()
    run = tmp_path / "run"
    run.mkdir()
    dst = run / src.name
    dst.write_bytes(data[:len(data) - 7])  # the writer is in the middle of its last record
    r = EventReader(run)
    r.refresh()
    assert len(r.scalars["a"].steps) == 10 and len(r.scalars["energy/gap"].steps) == 9
    with open(dst, "ab") as fh:
        fh.write(data[len(data) - 7:])
    assert r.refresh() == 1  # the rest of that record, nothing read twice
    assert list(r.scalars["energy/gap"].steps) == list(range(10)) and r.notes == []


def test_a_cut_record_is_skipped_with_a_note_once_a_newer_file_exists(tmp_path):
    write_scalars(tmp_path / "w", range(10))
    (src,) = (tmp_path / "w").iterdir()
    data = src.read_bytes()
    run = tmp_path / "run"
    run.mkdir()
    (run / src.name).write_bytes(data[:len(data) - 7])  # killed mid-record
    newer = src.name.replace("tfevents.", "tfevents.9")  # a later name: the resumed writer's file
    write_scalars(tmp_path / "w2", range(9, 12), purge_step=9)
    (run / newer).write_bytes(next((tmp_path / "w2").iterdir()).read_bytes())
    r = EventReader(run)
    r.refresh()
    assert list(r.scalars["energy/gap"].steps) == list(range(12))  # step 9 came back from the new file, once
    assert any("cut off" in n for n in r.notes)


def test_a_resumed_run_shows_one_value_per_step(tmp_path):
    write_scalars(tmp_path, range(0, 50))  # the killed run got to step 49; its last checkpoint was at 30
    write_scalars(tmp_path, range(30, 80), purge_step=30)
    r = EventReader(tmp_path)
    r.refresh()
    for s in r.scalars.values():
        assert list(s.steps) == list(range(80))


def test_corrupt_and_foreign_files_give_notes_not_errors(tmp_path):
    write_scalars(tmp_path, range(5))
    (tmp_path / "events.out.tfevents.0.garbage").write_bytes(b"\xff" * 40)  # a length of 2^64 − 1
    (tmp_path / "notes.txt").write_text("not an event file")
    r = EventReader(tmp_path)
    r.refresh()
    assert list(r.scalars["a"].steps) == list(range(5))
    assert any("claims" in n for n in r.notes)


def test_image_summaries_are_found_and_decoded_on_demand(tmp_path):
    x = torch.rand(5, 1, 28, 28) * 2 - 1
    with EBMLogger(tmp_path) as log:
        log.scalars(3, loss=0.5)
        log.negatives(3, x)
    r = EventReader(tmp_path)
    r.refresh()
    (tag,) = r.images
    (ref,) = r.images[tag]
    images = decode_images(image_value(ref).tensor)
    assert ref.step == 3 and images.shape == (5, 1, 28, 28)
    np.testing.assert_array_equal(images, np.round((x.numpy() + 1) * 127.5).clip(0, 255).astype(np.uint8))


def test_listing_runs_and_its_messages(tmp_path):
    assert "does not exist" in list_runs(tmp_path / "nope").problem
    (tmp_path / "file").write_text("x")
    assert "not a folder" in list_runs(tmp_path / "file").problem
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "notes.txt").write_text("foreign")
    assert "no TensorBoard event files" in list_runs(empty).problem
    root = tmp_path / "runs"
    write_scalars(root / "shortrun", range(3))
    write_scalars(root / "mine" / "seed1", range(3))
    write_scalars(root / "a" / "b" / "c" / "too_deep", range(3))
    listing = list_runs(root)
    assert sorted(r.name for r in listing.runs) == ["mine/seed1", "shortrun"] and listing.problem is None
    assert find(listing, "shortrun").files == 1
    assert find(listing, "../runs/shortrun") is None and find(listing, str(root / "shortrun")) is None
    shutil.rmtree(root / "shortrun")


def test_downsampling_keeps_extremes_ends_and_non_finite_values():
    steps = np.arange(100_000)
    values = np.sin(steps / 500.0)
    values[12_345] = 50.0  # a spike
    values[77_777] = np.nan
    s, v = downsample(steps, values, 2000)
    assert len(s) <= 2003 and s[0] == 0 and s[-1] == 99_999 and np.all(np.diff(s) > 0)
    assert 12_345 in s and 77_777 in s and np.nanmax(v) == 50.0
    assert np.nanmin(v) == pytest.approx(values[np.isfinite(values)].min())
    short = downsample(steps[:10], values[:10], 2000)
    np.testing.assert_array_equal(short[1], values[:10])
