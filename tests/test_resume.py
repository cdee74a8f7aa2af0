"""Resume and interruption: a complete run is skipped when re-run; a broken write never looks complete."""

from __future__ import annotations

import subprocess

import pytest

import twin.plots
from twin.writer import is_complete, write_run


def test_rerun_into_the_same_folder_skips_a_complete_run(tmp_path, twin_exe, repo_dir):
    out = tmp_path / "run"
    args = [twin_exe, "sim=day", "output.figures=false", f"hydra.run.dir={out}"]
    first = subprocess.run(args, capture_output=True, text=True, cwd=repo_dir, timeout=300)
    assert first.returncode == 0 and is_complete(out), first.stderr
    stamp = (out / "kpis.json").stat().st_mtime_ns
    second = subprocess.run(args, capture_output=True, text=True, cwd=repo_dir, timeout=300)
    assert second.returncode == 0
    assert "already holds a complete run" in second.stdout
    assert (out / "kpis.json").stat().st_mtime_ns == stamp  # not rewritten
    # a different configuration into the same folder is run again
    third = subprocess.run(
        [*args, "seed=7"], capture_output=True, text=True, cwd=repo_dir, timeout=300
    )
    assert third.returncode == 0 and "already holds" not in third.stdout
    assert (out / "kpis.json").stat().st_mtime_ns != stamp


def test_a_write_that_fails_part_way_leaves_no_complete_looking_result(
    day_result, tmp_path, monkeypatch
):
    out = tmp_path / "run"
    write_run(day_result, out)
    assert is_complete(out)
    before = (out / "kpis.json").read_text()

    def broken(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(twin.plots, "write_figures", broken)
    with pytest.raises(OSError, match="disk full"):
        write_run(day_result, out)
    assert not is_complete(out)  # the old DONE was removed before anything was rewritten
    assert (out / "kpis.json").read_text() == before  # files written earlier are intact
    assert not list(out.glob(".*.tmp-*"))  # no temporary files left behind
