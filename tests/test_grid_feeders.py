"""Feeder loading: SimBench and pandapower.networks feeders, user JSON, cache, errors."""

from __future__ import annotations

import numpy as np
import pandapower as pp
import pytest

from twin.grid.feeders import (
    HOUSEHOLD_COS_PHI,
    HOUSEHOLD_E_KWH_PER_YEAR,
    KNOWN_FEEDERS,
    N_STEPS_YEAR,
    FeederError,
    default_cache_dir,
    load_feeder,
)


def small_net(with_load: bool = True) -> pp.pandapowerNet:
    net = pp.create_empty_network()
    mv = pp.create_bus(net, 10.0)
    lv = pp.create_bus(net, 0.4)
    b2 = pp.create_bus(net, 0.4)
    pp.create_ext_grid(net, mv, vm_pu=1.02)
    pp.create_transformer(net, mv, lv, std_type="0.25 MVA 10/0.4 kV")
    pp.create_line(net, lv, b2, length_km=0.1, std_type="NAYY 4x150 SE")
    if with_load:
        pp.create_load(net, b2, p_mw=0.002, q_mvar=0.0005)
        pp.create_load(net, b2, p_mw=0.003, q_mvar=0.0005)
    return net


def test_simbench_default_feeder() -> None:
    f = load_feeder()
    net = f.net
    assert f.name == "1-LV-urban6--0-sw"
    assert f.load_p_kw.shape == f.load_q_kvar.shape == (N_STEPS_YEAR, len(net.load))
    # households are exactly the H0 loads; commercial loads stay non-household
    is_h0 = net.load["profile"].str.startswith("H0")
    assert set(f.household_load_idx) == set(net.load.index[is_h0])
    assert f.n_households == int(is_h0.sum()) > 50
    assert not net.sgen["in_service"].any()
    assert net.trafo["vector_group"].tolist() == ["Dyn5"]
    # profiles are the SimBench relative profiles times the load's p_mw, kW; peak <= p_mw
    assert np.all(f.load_p_kw.max(axis=0) <= net.load["p_mw"].to_numpy() * 1e3 + 1e-9)
    e_hh_kwh = f.load_p_kw[:, f.household_cols].sum(axis=0) * 0.25
    assert 500 < np.median(e_hh_kwh) < 6000


def test_feb29_is_dropped() -> None:
    from twin.grid.feeders import _drop_feb29

    leap = np.arange(N_STEPS_YEAR + 96, dtype=float)[:, None]
    out = _drop_feb29(leap)
    assert out.shape == (N_STEPS_YEAR, 1)
    # Feb 28 23:45 is followed by Mar 1 00:00 (one day of 96 steps skipped)
    assert out[59 * 96 - 1, 0] == 59 * 96 - 1 and out[59 * 96, 0] == 60 * 96
    assert _drop_feb29(out).shape == (N_STEPS_YEAR, 1)  # a 365-day year is kept
    with pytest.raises(FeederError, match="15-min"):
        _drop_feb29(leap[:1000])


@pytest.mark.parametrize("name", ["kerber_landnetz_kabel_1", "ieee_european_lv"])
def test_networks_feeders_get_bdew_h0(name: str) -> None:
    f = load_feeder(name)
    # every load is one household with the BDEW H0 profile at 2,550 kWh/yr (365 of 366 days)
    assert len(f.household_load_idx) == len(f.net.load)
    e_kwh = f.load_p_kw.sum(axis=0) * 0.25
    np.testing.assert_allclose(e_kwh, HOUSEHOLD_E_KWH_PER_YEAR, rtol=0.01)
    tan_phi = np.tan(np.arccos(HOUSEHOLD_COS_PHI))
    np.testing.assert_allclose(f.load_q_kvar, f.load_p_kw * tan_phi)
    # winter evening peak above summer night
    assert f.load_p_kw[:, 0].max() > 2 * f.load_p_kw[:, 0].mean()


def test_ieee_european_lv_is_balanced() -> None:
    f = load_feeder("ieee_european_lv")
    assert len(f.net.load) == 55 and len(f.net.asymmetric_load) == 0


def test_all_known_names_resolve() -> None:
    assert "ieee_european_lv" in KNOWN_FEEDERS and "kerber_dorfnetz" in KNOWN_FEEDERS


# pandapower's nets_equal compares object columns whose empty cells are NaN in a net built in
# memory and None after a JSON round trip; pandas warns that it will stop treating them as equal
@pytest.mark.filterwarnings("ignore:Mismatched null-like values:FutureWarning")
def test_cache_round_trip(tmp_path) -> None:
    a = load_feeder("kerber_landnetz_kabel_2", cache_dir=tmp_path)
    assert len(list(tmp_path.glob("*.json"))) == 1 and len(list(tmp_path.glob("*.npz"))) == 1
    import twin.grid.feeders as feeders

    feeders._MEMO.clear()  # read the files, not the in-process copy
    b = load_feeder("kerber_landnetz_kabel_2", cache_dir=tmp_path)
    np.testing.assert_array_equal(a.load_p_kw, b.load_p_kw)
    np.testing.assert_array_equal(a.household_load_idx, b.household_load_idx)
    from pandapower.toolbox import nets_equal

    assert nets_equal(a.net, b.net)


def test_loaded_nets_are_independent() -> None:
    a = load_feeder("kerber_landnetz_kabel_1")
    a.net.load["p_mw"] = 99.0
    a.load_p_kw[:] = -1.0
    b = load_feeder("kerber_landnetz_kabel_1")
    assert (b.net.load["p_mw"] < 1.0).all() and (b.load_p_kw >= 0).all()


def test_cache_dir_env(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("TWIN_CACHE_DIR", str(tmp_path))
    assert default_cache_dir() == tmp_path / "feeders"


def test_user_json(tmp_path) -> None:
    path = tmp_path / "my_street.json"
    pp.to_json(small_net(), str(path))
    f = load_feeder(str(path), cache_dir=tmp_path / "cache")
    assert f.name == "my_street"
    assert f.n_households == 2
    assert f.load_p_kw.shape == (N_STEPS_YEAR, 2)


def _assert_one_line(exc: pytest.ExceptionInfo) -> str:
    msg = str(exc.value)
    assert "\n" not in msg and len(msg) < 400
    return msg


def test_unknown_code() -> None:
    with pytest.raises(FeederError) as exc:
        load_feeder("foo")
    msg = _assert_one_line(exc)
    assert "unknown grid 'foo'" in msg and "1-LV-urban6--0-sw" in msg and ".json" in msg
    assert isinstance(exc.value, ValueError)


def test_missing_file(tmp_path) -> None:
    with pytest.raises(FeederError) as exc:
        load_feeder(str(tmp_path / "nope.json"))
    assert "does not exist" in _assert_one_line(exc)


def test_bad_file(tmp_path) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text("{ this is not json\n at all")
    with pytest.raises(FeederError) as exc:
        load_feeder(str(bad), cache_dir=tmp_path)
    assert "cannot read pandapower net" in _assert_one_line(exc)


def test_feeder_without_loads(tmp_path) -> None:
    path = tmp_path / "empty.json"
    pp.to_json(small_net(with_load=False), str(path))
    with pytest.raises(FeederError) as exc:
        load_feeder(str(path), cache_dir=tmp_path)
    msg = _assert_one_line(exc)
    assert "no in-service household load" in msg and "create_load" in msg


def test_feeder_with_loads_only_on_unsupplied_bus(tmp_path) -> None:
    net = small_net()
    net.line["in_service"] = False  # the load bus is cut off
    path = tmp_path / "cut.json"
    pp.to_json(net, str(path))
    with pytest.raises(FeederError, match="supplied by the ext_grid"):
        load_feeder(str(path), cache_dir=tmp_path)


@pytest.mark.parametrize(
    ("breakage", "expected"),
    [("no_trafo", "no in-service MV/LV transformer"), ("no_ext_grid", "no in-service ext_grid")],
)
def test_feeder_structure_errors(tmp_path, breakage: str, expected: str) -> None:
    net = small_net()
    if breakage == "no_trafo":
        net.trafo.drop(net.trafo.index, inplace=True)
    else:
        net.ext_grid.drop(net.ext_grid.index, inplace=True)
    path = tmp_path / f"{breakage}.json"
    pp.to_json(net, str(path))
    with pytest.raises(FeederError) as exc:
        load_feeder(str(path), cache_dir=tmp_path)
    assert expected in _assert_one_line(exc)


def test_json_that_is_not_a_net(tmp_path) -> None:
    path = tmp_path / "list.json"
    path.write_text("[1, 2, 3]")
    with pytest.raises(FeederError) as exc:
        load_feeder(str(path), cache_dir=tmp_path)
    assert str(path) in _assert_one_line(exc)
