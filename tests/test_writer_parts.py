"""A year's ``households.parquet`` is written in parts (row groups) so a year of every household
is never in memory two or three times over; the file is the same table as the whole frame."""

from __future__ import annotations

import pandas as pd
import pyarrow.parquet as pq

import twin.writer as writer


def test_households_parquet_in_parts_is_the_whole_frame(day_result, tmp_path, monkeypatch):
    whole = tmp_path / "whole.parquet"
    day_result.households_frame().to_parquet(whole, index=False)
    n_households = day_result.log["p_net_kw"].shape[1]
    monkeypatch.setattr(writer, "HOUSEHOLD_ROWS_PER_PART", 7 * n_households)  # 7 steps a part
    parts = tmp_path / "parts.parquet"
    writer._households_parquet(day_result, parts)
    assert pq.ParquetFile(parts).metadata.num_row_groups > 1
    pd.testing.assert_frame_equal(pd.read_parquet(parts), pd.read_parquet(whole), check_exact=True)
    assert pq.read_schema(parts).equals(pq.read_schema(whole), check_metadata=True)
