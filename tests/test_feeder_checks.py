"""Feeder checks when loaded (twin.grid.feeders.check_net / check_supplied) and the radial
test the contracts use (is_radial / check_radial / find_mesh)."""

from __future__ import annotations

import pandapower as pp
import pytest

from twin.grid.feeders import (
    TRAFO_VN_RTOL,
    FeederError,
    check_net,
    check_radial,
    check_supplied,
    find_mesh,
    is_radial,
    load_feeder,
    prepare_net,
)


def street(n_houses: int = 3) -> pp.pandapowerNet:
    """10/0.4 kV station and a radial string of cabinets, one house each."""
    net = pp.create_empty_network()
    mv = pp.create_bus(net, 10.0, name="mv")
    lv = pp.create_bus(net, 0.4, name="lv")
    pp.create_ext_grid(net, mv)
    pp.create_transformer(net, mv, lv, std_type="0.25 MVA 10/0.4 kV", name="T1")
    prev = lv
    for i in range(n_houses):
        b = pp.create_bus(net, 0.4, name=f"cab {i}")
        pp.create_line(net, prev, b, 0.05, "NAYY 4x150 SE", name=f"L{i}")
        pp.create_load(net, b, p_mw=0.002, name=f"house {i}")
        prev = b
    return net


def checked(net: pp.pandapowerNet) -> None:
    prepare_net(net)
    check_net(net, "street")
    check_supplied(net, "street")


def test_a_clean_street_passes_and_is_radial() -> None:
    net = street()
    checked(net)
    assert is_radial(net) and find_mesh(net) is None
    check_radial(net, "street")


def test_parallel_transformers_are_one_station() -> None:
    net = street()
    pp.create_transformer(net, 0, 1, std_type="0.25 MVA 10/0.4 kV", name="T2")
    checked(net)
    assert is_radial(net)
    # also with the LV busbar split in two halves joined by a closed bus coupler
    net = street()
    half = pp.create_bus(net, 0.4, name="lv half 2")
    pp.create_switch(net, 1, half, et="b", closed=True)
    pp.create_transformer(net, 0, half, std_type="0.25 MVA 10/0.4 kV", name="T2")
    checked(net)
    assert is_radial(net)


def test_ring_is_detected_and_named_until_a_switch_opens_it() -> None:
    net = street()
    ring = pp.create_line(net, 4, 1, 0.08, "NAYY 4x150 SE", name="ring")
    checked(net)  # meshed is fine for the AC power flow
    loop = find_mesh(net)
    assert not is_radial(net) and set(loop) == {"line 0", "line 1", "line 2", f"line {ring}"}
    with pytest.raises(FeederError) as exc:
        check_radial(net, "street", needed_by="contract=performance")
    msg = str(exc.value)
    assert "\n" not in msg and "is meshed" in msg and "contract=performance" in msg
    assert "line 3" in msg and "open a switch" in msg
    pp.create_switch(net, 4, ring, et="l", closed=False)
    assert is_radial(net)
    net.switch.loc[0, "closed"] = True
    assert not is_radial(net)
    net.line.loc[ring, "in_service"] = False
    assert is_radial(net)


def test_two_line_rows_between_the_same_buses_are_a_loop() -> None:
    net = street(1)
    pp.create_line(net, 1, 2, 0.05, "NAYY 4x150 SE", name="twin cable")
    assert not is_radial(net)
    with pytest.raises(FeederError, match="parallel=2"):
        check_radial(net, "street")


def test_shipped_feeders_are_radial() -> None:
    for name in ("1-LV-urban6--0-sw", "kerber_dorfnetz", "ieee_european_lv"):
        assert is_radial(load_feeder(name).net), name


def test_off_nominal_transformer_rating_is_accepted_a_wrong_level_is_not() -> None:
    net = street()
    net.trafo.loc[0, "vn_lv_kv"] = 0.4 * (1 + TRAFO_VN_RTOL * 0.9)
    checked(net)
    net.trafo.loc[0, "vn_lv_kv"] = 0.23
    with pytest.raises(FeederError, match=r"vn_lv_kv=0.23 but its lv_bus 1 has vn_kv=0.4"):
        checked(net)


def test_storage_and_sgen_are_set_out_of_service_not_rejected() -> None:
    net = street()
    pp.create_storage(net, 2, p_mw=0.003, max_e_mwh=0.01)
    pp.create_sgen(net, 3, p_mw=0.004)
    checked(net)
    assert not net.storage.in_service.any() and not net.sgen.in_service.any()


def test_many_cut_off_loads_are_counted_in_one_line() -> None:
    net = street(9)
    net.line.loc[0, "in_service"] = False
    with pytest.raises(FeederError) as exc:
        checked(net)
    msg = str(exc.value)
    assert "\n" not in msg and "and 5 more (9 in all)" in msg and "in_service=False" in msg


def test_out_of_service_loads_are_not_households(tmp_path) -> None:
    net = street()
    net.load.loc[2, "in_service"] = False
    net.line.loc[2, "in_service"] = False  # its cabinet is cut off: fine, the load is out
    path = tmp_path / "street.json"
    pp.to_json(net, str(path))
    f = load_feeder(str(path), cache_dir=tmp_path / "cache")
    assert list(f.household_load_idx) == [0, 1]


def test_simbench_out_of_service_h0_load_is_not_a_household(tmp_path) -> None:
    import warnings

    import simbench as sb

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        net = sb.get_simbench_net("1-LV-rural1--0-sw")
    h0 = net.load.index[net.load.profile.str.startswith("H0")]
    net.load.loc[h0[0], "in_service"] = False
    path = tmp_path / "rural1.json"
    pp.to_json(net, str(path))
    f = load_feeder(str(path), cache_dir=tmp_path / "cache")
    assert set(f.household_load_idx) == set(h0[1:])


def test_self_loop_line_is_a_mesh() -> None:
    net = street(1)
    pp.create_line(net, 2, 2, 0.01, "NAYY 4x150 SE", name="stub")
    assert find_mesh(net) == ["line 1"]
