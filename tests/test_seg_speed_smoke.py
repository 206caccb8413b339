"""benchmarks/seg_speed.py, the segmentation training benchmark, without a GPU: its --smoke mode
runs the comparison's own code on the CPU at 64x64 (both sides train deeplabv3_resnet50 with
its auxiliary head on the JPEGs and masks it writes, and a ratio comes out) and writes no doc;
without --smoke and without CUDA it says it needs a GPU, exits 1 and writes nothing."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "benchmarks"))

import seg_speed  # noqa: E402


def test_smoke_trains_both_sides_and_writes_no_doc(tmp_path, capsys):
    doc = tmp_path / "benchmarks.md"
    seg_speed.main(["--smoke", "--doc", str(doc)])
    out = capsys.readouterr().out
    row = next(line for line in out.splitlines() if line.startswith("| deeplabv3_resnet50"))
    hand, ours, ratio = (cell.strip() for cell in row.split("|")[2:5])
    assert "failed" not in (hand, ours)
    assert float(hand.split()[0]) > 0 and float(ours.split()[0]) > 0 and float(ratio) > 0
    assert "with the auxiliary head" in out and "+ 0.5 x on `aux`" in out
    assert not doc.exists()


def test_without_cuda_it_says_so_and_writes_nothing(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    doc = tmp_path / "benchmarks.md"
    with pytest.raises(SystemExit) as stopped:
        seg_speed.main(["--quick", "--doc", str(doc)])
    assert stopped.value.code == 1
    err = capsys.readouterr().err
    assert "CUDA GPU" in err and "--smoke" in err and len(err.strip().splitlines()) == 1
    assert not doc.exists()
