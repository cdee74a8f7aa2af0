"""Feeder figures: coordinates follow the topology, images are written."""

from __future__ import annotations

import matplotlib.image as mpimg
import numpy as np
import pytest

from twin.grid.feeders import load_feeder
from twin.grid.plots import bus_coordinates, plot_duration_curve, plot_feeder_loading


def test_tree_layout_without_geodata() -> None:
    f = load_feeder("kerber_landnetz_kabel_1")  # Kerber nets carry no coordinates
    net = f.net
    xy = bus_coordinates(net)
    assert xy.shape == (len(net.bus), 2) and np.isfinite(xy).all()
    pos = {b: i for i, b in enumerate(net.bus.index)}
    root = pos[int(net.ext_grid.bus.iloc[0])]
    # the ext grid is on top and every line goes exactly one level down
    assert xy[root, 1] == xy[:, 1].max()
    dy = [
        abs(xy[pos[a], 1] - xy[pos[b], 1])
        for a, b in zip(net.line.from_bus, net.line.to_bus, strict=True)
    ]
    assert np.allclose(dy, 1.0)
    # no two buses share a position
    assert len({tuple(p) for p in xy}) == len(net.bus)


def test_geodata_is_used() -> None:
    f = load_feeder("1-LV-urban6--0-sw")
    xy = bus_coordinates(f.net)
    assert 10 < xy[:, 0].min() < 13 and 50 < xy[:, 1].min() < 55  # lon/lat of the SimBench grid


@pytest.mark.parametrize("name", ["1-LV-urban6--0-sw", "kerber_landnetz_kabel_1"])
def test_figures_are_written(tmp_path, name: str) -> None:
    f = load_feeder(name)
    loading = np.linspace(0, 130, len(f.net.line))
    out = plot_feeder_loading(f.net, loading, tmp_path / "loading.png", title=name)
    img = mpimg.imread(out)
    assert img.ndim == 3 and img.shape[0] > 300 and img.shape[1] > 300
    # the overloaded cables are drawn in the top colour (dark red) somewhere in the image
    rgb = img[..., :3]
    assert ((rgb[..., 0] > 0.5) & (rgb[..., 1] < 0.15) & (rgb[..., 2] < 0.2)).sum() > 20
    curve = np.sort(np.r_[np.full(10, 110.0), np.linspace(0, 90, 200)])[::-1]
    out2 = plot_duration_curve(curve, tmp_path / "dc.png")
    assert mpimg.imread(out2).shape[0] > 200
    with pytest.raises(ValueError, match="shape"):
        plot_feeder_loading(f.net, loading[:-1], tmp_path / "x.png")
