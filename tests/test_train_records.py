"""A run's epoch records (engine/train_records.py): ``metrics.jsonl`` and ``state.pt`` keep
them as plain values with the keys earlier gkaan versions wrote, so an old run folder still
resumes, draws its curves and reports."""

from __future__ import annotations

import json
from typing import Any

from gkaan_cli.engine.train_plot import curve_series
from gkaan_cli.engine.train_records import BatchSums, EpochRecord

#: A metrics.jsonl line as gkaan wrote it before 0.2: no eval video_nll.
OLD_LINE = (
    '{"epoch": 1, "eval": {"clip_top1": 0.5, "mean_class": 0.5, "split": "val", '
    '"streams": {"gl": 0.5, "gp": 1.0, "gs": 0.5}, "video_top1": 0.5, "video_top5": 1.0}, '
    '"lr": 0.001, "step": 2, "time": {"clips_per_s": 12.5, "train_seconds": 0.64}, '
    '"train": {"clips": 8, "ga_la": 0.01, "ga_sa": 0.02, "loss": 0.75, "nll": 0.72, '
    '"top1": 0.625}}'
)


def _line(record: dict[str, Any]) -> str:
    return json.dumps(record, sort_keys=True)  # as train writes metrics.jsonl


def test_an_old_record_reads_back_and_writes_the_same_line() -> None:
    record = EpochRecord.from_json(json.loads(OLD_LINE))
    assert record.eval is not None and record.eval.video_nll is None
    assert record.train.clips == 8 and record.time.clips_per_s == 12.5
    assert _line(record.to_json()) == OLD_LINE
    loss, top1, _ = curve_series([record])
    assert "val video nll" not in loss and top1["val fused"] == [(1, 0.5)]


def test_a_record_without_eval_has_no_eval_key_and_round_trips() -> None:
    old = json.loads(OLD_LINE)
    del old["eval"]
    record = EpochRecord.from_json(old)
    assert record.eval is None and "eval" not in record.to_json()
    assert record.to_json() == old
    with_nll = json.loads(OLD_LINE)
    with_nll["eval"]["video_nll"] = 0.3
    assert EpochRecord.from_json(with_nll).to_json() == with_nll


def test_batch_sums_add_by_name_and_give_means_per_clip() -> None:
    sums = BatchSums()
    sums += BatchSums(loss=2.0, nll=1.5, ga_sa=0.25, ga_la=0.25, correct=3.0, clips=4.0)
    sums += BatchSums(loss=1.0, nll=1.0, ga_sa=0.0, ga_la=0.0, correct=1.0, clips=4.0)
    assert BatchSums.from_list(sums.to_list()) == sums
    scores = sums.scores()
    assert (scores.loss, scores.nll, scores.top1, scores.clips) == (3 / 8, 2.5 / 8, 0.5, 8)
    assert BatchSums().scores().clips == 0  # an empty epoch divides by one, not zero
