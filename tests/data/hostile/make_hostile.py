"""Regenerate the hostile inputs in this folder (run from the repo root).

    python tests/data/hostile/make_hostile.py

Writes ``grid/*.json`` (pandapower nets, some with code or file references a plain
``pandapower.from_json`` would follow), ``weather/*.csv[.gz]`` (weather files with wrong units,
gaps, duplicates, ...) and ``cases.yaml``: for each file how twin must end (``error`` with a
one-line message containing ``match``, ``warning`` and a result, or ``ok``), and whether
``tests/test_hostile_inputs.py`` also runs it through the ``twin`` command line (``cli``).

Placeholders in grid files, replaced by the test before loading: ``@SECRET_JSON@`` (the
absolute path of a JSON file outside the net, which must never be read).
"""

from __future__ import annotations

import copy
import json
from pathlib import Path

import numpy as np
import pandapower as pp
import pandas as pd
import yaml

HERE = Path(__file__).parent
CASES: list[dict] = []


def case(file: str, kind: str, expect: str, match: str = "", cli: bool = False, **extra) -> None:
    CASES.append(
        {"file": file, "kind": kind, "expect": expect, "match": match, "cli": cli, **extra}
    )


# ----------------------------------------------------------------------------------------------
# grids
# ----------------------------------------------------------------------------------------------


def base_net() -> pp.pandapowerNet:
    """10/0.4 kV station, a radial LV cable string of three buses, one house on each."""
    net = pp.create_empty_network(name="hostile base")
    mv = pp.create_bus(net, 10.0, name="mv")
    lv = pp.create_bus(net, 0.4, name="lv busbar")
    b = [pp.create_bus(net, 0.4, name=f"cabinet {i}") for i in range(3)]
    pp.create_ext_grid(net, mv, vm_pu=1.02)
    pp.create_transformer(net, mv, lv, std_type="0.25 MVA 10/0.4 kV", name="station")
    pp.create_line(net, lv, b[0], 0.10, "NAYY 4x150 SE", name="cable 0")
    pp.create_line(net, b[0], b[1], 0.08, "NAYY 4x150 SE", name="cable 1")
    pp.create_line(net, b[1], b[2], 0.05, "NAYY 4x50 SE", name="cable 2")
    for i, bus in enumerate(b):
        pp.create_load(net, bus, p_mw=0.003, q_mvar=0.001, name=f"house {i}")
    return net


def tree(net: pp.pandapowerNet) -> dict:
    net = copy.deepcopy(net)
    net.std_types = {key: {} for key in net.std_types}  # keep the files small
    t = json.loads(pp.to_json(net))
    for key, value in list(t["_object"].items()):  # empty tables come from create_empty_network
        if isinstance(value, dict) and value.get("_class") == "DataFrame":
            if not json.loads(value["_object"]).get("data"):
                del t["_object"][key]
    return t


def write_tree(name: str, t: dict) -> None:
    (HERE / "grid").mkdir(exist_ok=True)
    (HERE / "grid" / name).write_text(json.dumps(t))


def write_net(name: str, net: pp.pandapowerNet) -> None:
    write_tree(name, tree(net))


def grids() -> None:
    # --- data only: code and file references -------------------------------------------------
    t = tree(base_net())
    t["_object"]["helper"] = {"_module": "feeder_helpers", "_class": "function", "_object": "run"}
    write_tree("function_by_module_name.json", t)
    case(
        "grid/function_by_module_name.json",
        "grid",
        "error",
        "'feeder_helpers.function'",
        cli=True,
        imports="feeder_helpers",
    )

    t = tree(base_net())
    t["_object"]["bus"]["_module"] = "feeder_helpers"
    write_tree("table_class_from_local_module.json", t)
    case(
        "grid/table_class_from_local_module.json",
        "grid",
        "error",
        "'feeder_helpers.DataFrame'",
        imports="feeder_helpers",
    )

    t = tree(base_net())
    ctrl = {
        "_module": "feeder_helpers",
        "_class": "Controller",
        "_object": json.dumps({"net": None, "index": 0}),
    }
    frame = pd.DataFrame({"object": [None], "in_service": [True]})
    ft = json.loads(pp.to_json(pp.create_empty_network()))["_object"]["bus"]
    ft["_object"] = frame.to_json(orient="split")
    ft["_object"] = ft["_object"].replace("null", json.dumps(ctrl), 1)
    ft["dtype"] = {"object": "object", "in_service": "bool"}
    t["_object"]["controller"] = ft
    write_tree("controller_from_local_module.json", t)
    case(
        "grid/controller_from_local_module.json",
        "grid",
        "error",
        "'feeder_helpers.Controller'",
        imports="feeder_helpers",
    )

    t = tree(base_net())
    t["_object"]["bus"]["_object"] = "@SECRET_JSON@"
    write_tree("table_is_a_file_path.json", t)
    case(
        "grid/table_is_a_file_path.json",
        "grid",
        "error",
        "not JSON text",
        cli=True,
        reads_secret=True,
    )

    t = tree(base_net())
    t["_object"]["load"]["dtype"]["name"] = "string[pyarrow]"
    write_tree("dtype_importing_a_library.json", t)
    case("grid/dtype_importing_a_library.json", "grid", "error", "string[pyarrow]")

    t = tree(base_net())
    t["_object"]["line"]["storage_options"] = {"token": "x"}
    write_tree("table_with_reader_options.json", t)
    case("grid/table_with_reader_options.json", "grid", "error", "storage_options")

    t = tree(base_net())
    t["_object"]["builtin"] = {"_module": "builtins", "_class": "eval", "_object": "1+1"}
    write_tree("builtin_eval.json", t)
    case("grid/builtin_eval.json", "grid", "error", "'builtins.eval'")

    t = tree(base_net())
    t["_object"] = json.dumps(t["_object"])
    write_tree("net_as_text.json", t)
    case("grid/net_as_text.json", "grid", "error", "not a JSON object")

    t = tree(base_net())
    t["_object"]["bus"] = "a text where the bus table should be"
    write_tree("bus_not_a_table.json", t)
    case("grid/bus_not_a_table.json", "grid", "error", "net.bus is a str, not a table")

    net = base_net()
    net.line = net.line.drop(columns=["from_bus"])
    write_net("line_without_from_bus.json", net)
    case("grid/line_without_from_bus.json", "grid", "error", "malformed table (KeyError")

    (HERE / "grid" / "not_json.json").write_text('{"_module": "pandapower.auxiliary", "_class":')
    case("grid/not_json.json", "grid", "error", "not JSON", cli=True)
    (HERE / "grid" / "list.json").write_text("[1, 2, 3]")
    case("grid/list.json", "grid", "error", "is not a pandapower net")
    (HERE / "grid" / "old_format.json").write_text(json.dumps({"bus": {"vn_kv": {"0": 0.4}}}))
    case("grid/old_format.json", "grid", "error", "old pandapower format")

    # --- feeder checks -----------------------------------------------------------------------
    net = base_net()
    net.line.loc[1, "in_service"] = False
    write_net("line_out_of_service.json", net)
    case(
        "grid/line_out_of_service.json",
        "grid",
        "error",
        "load 1 ('house 1'), load 2 ('house 2') (2 in all) are not supplied",
        cli=True,
    )

    net = base_net()
    extra = pp.create_bus(net, 0.4, name="isolated")
    pp.create_load(net, extra, p_mw=0.002, name="house on an island")
    write_net("isolated_bus.json", net)
    case("grid/isolated_bus.json", "grid", "error", "load 3 ('house on an island')")

    net = base_net()
    pp.create_switch(net, 4, 2, et="l", closed=False)
    write_net("open_switch.json", net)
    case("grid/open_switch.json", "grid", "error", "load 2 ('house 2') (1 in all) are not supplied")

    net = base_net()
    net.bus.loc[3, "in_service"] = False
    write_net("bus_out_of_service.json", net)
    case("grid/bus_out_of_service.json", "grid", "error", "(2 in all) are not supplied")

    for fname, table, col, value, match in (
        (
            "negative_length.json",
            "line",
            "length_km",
            -0.05,
            "line 1 ('cable 1') has length_km=-0.05 (must be > 0)",
        ),
        ("zero_length.json", "line", "length_km", 0.0, "has length_km=0 (must be > 0)"),
        (
            "negative_resistance.json",
            "line",
            "r_ohm_per_km",
            -0.2,
            "has r_ohm_per_km=-0.2 (must be >= 0)",
        ),
        ("zero_rating.json", "line", "max_i_ka", 0.0, "has max_i_ka=0 (must be > 0)"),
        ("missing_reactance.json", "line", "x_ohm_per_km", None, "has x_ohm_per_km=missing"),
        (
            "trafo_zero_vk.json",
            "trafo",
            "vk_percent",
            0.0,
            "trafo 0 ('station') has vk_percent=0 (must be > 0)",
        ),
        ("trafo_zero_sn.json", "trafo", "sn_mva", 0.0, "has sn_mva=0 (must be > 0)"),
        (
            "trafo_vkr_above_vk.json",
            "trafo",
            "vkr_percent",
            9.0,
            "has vkr_percent=9 (must be within 0 ... vk_percent)",
        ),
        (
            "bus_zero_voltage.json",
            "bus",
            "vn_kv",
            0.0,
            "bus 1 ('lv busbar') has vn_kv=0 (must be > 0)",
        ),
    ):
        net = base_net()
        net[table].loc[1 if table != "trafo" else 0, col] = value if value is not None else np.nan
        write_net(fname, net)
        case(f"grid/{fname}", "grid", "error", match, cli=fname == "negative_length.json")

    net = base_net()
    net.line.loc[2, ["r_ohm_per_km", "x_ohm_per_km"]] = 0.0
    write_net("zero_impedance.json", net)
    case(
        "grid/zero_impedance.json",
        "grid",
        "error",
        "line 2 ('cable 2') has r_ohm_per_km=0 (must be > 0 where x_ohm_per_km is 0: zero impedance)",
    )

    net = base_net()
    net.bus.loc[4, "vn_kv"] = 10.0
    write_net("line_joins_two_voltages.json", net)
    case(
        "grid/line_joins_two_voltages.json",
        "grid",
        "error",
        "joins buses of different vn_kv (bus 3 at 0.4 kV, bus 4 at 10 kV)",
    )

    net = base_net()
    net.trafo.loc[0, ["hv_bus", "lv_bus"]] = [1, 0]
    write_net("trafo_hv_lv_swapped.json", net)
    case(
        "grid/trafo_hv_lv_swapped.json",
        "grid",
        "error",
        "has vn_hv_kv=10 but its hv_bus 1 has vn_kv=0.4",
    )

    net = base_net()
    net.line.loc[0, "to_bus"] = 99
    write_net("line_to_missing_bus.json", net)
    case("grid/line_to_missing_bus.json", "grid", "error", "that net.bus lacks")

    net = base_net()
    net.ext_grid.drop(net.ext_grid.index, inplace=True)
    write_net("no_ext_grid.json", net)
    case("grid/no_ext_grid.json", "grid", "error", "has no in-service ext_grid")

    net = base_net()
    pp.create_ext_grid(net, 1, name="second source")
    write_net("two_ext_grids.json", net)
    case(
        "grid/two_ext_grids.json",
        "grid",
        "error",
        "has 2 (ext_grid 0, ext_grid 1 ('second source')) in-service ext_grid",
    )

    for el, make in (
        ("trafo3w", lambda n: pp.create_transformer3w(n, 0, 1, 2, "63/25/38 MVA 110/20/10 kV")),
        ("gen", lambda n: pp.create_gen(n, 4, p_mw=0.01, vm_pu=1.0)),
        ("ward", lambda n: pp.create_ward(n, 3, 0.001, 0.0, 0.0, 0.0)),
        ("impedance", lambda n: pp.create_impedance(n, 3, 4, 0.01, 0.01, 0.25)),
        ("dcline", lambda n: pp.create_dcline(n, 3, 4, 0.01, 0.0, 0.0, 1.0, 1.0)),
        ("asymmetric_load", lambda n: pp.create_asymmetric_load(n, 4, p_a_mw=0.002)),
    ):
        net = base_net()
        make(net)
        write_net(f"unsupported_{el}.json", net)
        case(
            f"grid/unsupported_{el}.json",
            "grid",
            "error",
            f"{el} 0",
            unsupported=el,
            cli=el == "trafo3w",
        )

    # --- legitimate nets that must load ------------------------------------------------------
    net = base_net()
    pp.create_transformer(net, 0, 1, std_type="0.25 MVA 10/0.4 kV", name="station, second unit")
    write_net("parallel_trafos.json", net)
    case("grid/parallel_trafos.json", "grid", "ok", radial=True)

    net = base_net()
    pp.create_line(net, 4, 1, 0.12, "NAYY 4x150 SE", name="ring closure")
    write_net("meshed.json", net)
    case("grid/meshed.json", "grid", "ok", radial=False)

    net = base_net()
    net.trafo.loc[0, "vn_lv_kv"] = 0.42  # off-nominal rating, within TRAFO_VN_RTOL
    net.load.loc[2, "in_service"] = False  # an out-of-service house is left out, not an error
    net.line.loc[2, "in_service"] = False
    write_net("off_nominal_trafo.json", net)
    case("grid/off_nominal_trafo.json", "grid", "ok", radial=True, households=2)


# ----------------------------------------------------------------------------------------------
# weather
# ----------------------------------------------------------------------------------------------


def try_hourly() -> pd.DataFrame:
    from twin.weather import read_try2010

    return read_try2010(5)


def write_weather(name: str, times, t, g, gz: bool = True) -> str:
    (HERE / "weather").mkdir(exist_ok=True)
    df = pd.DataFrame({"time": list(times), "t_out_c": t, "ghi_w_m2": g})
    path = HERE / "weather" / (name + (".csv.gz" if gz else ".csv"))
    df.to_csv(
        path,
        index=False,
        float_format="%.6g",
        compression={"method": "gzip", "mtime": 0} if gz else None,
    )
    return f"weather/{path.name}"


def weather() -> None:
    h = try_hourly()
    T, G = h["t_out_c"].to_numpy(), h["ghi_w_m2"].to_numpy()
    year = pd.date_range("2025-01-01", periods=8760, freq="h")
    iso = year.strftime("%Y-%m-%dT%H:%M")

    f = write_weather("ok_hourly_year", iso, T, G)
    case(f, "weather", "ok", same_as_try2010=True, cli=True)

    # July 2023 - June 2024 (a leap year: Feb 29 is dropped) in UTC: December must land in December
    start = pd.Timestamp("2023-07-01 00:00")
    stamps = pd.date_range(start, "2024-06-30 23:00", freq="h")
    ref_rows = [
        (
            (
                pd.Timestamp(2025, s.month, min(s.day, 28) if s.month == 2 else s.day)
                - pd.Timestamp(2025, 1, 1)
            ).days
        )
        * 24
        + s.hour
        for s in stamps
    ]
    utc = (stamps.tz_localize("Etc/GMT-1").tz_convert("UTC")).strftime("%Y-%m-%dT%H:%MZ")
    f = write_weather("ok_july_to_june_utc", utc, T[ref_rows], G[ref_rows])
    case(f, "weather", "ok", same_as_try2010=True)

    local = year.tz_localize("Etc/GMT-1").tz_convert("Europe/Amsterdam")
    f = write_weather(
        "ok_local_clock_with_offsets", [s.isoformat(timespec="minutes") for s in local], T, G
    )
    case(f, "weather", "ok", same_as_try2010=True)

    f = write_weather("kelvin", iso, T + 273.15, G)
    case(f, "weather", "error", "that is kelvin", cli=True)
    f = write_weather("irradiance_kw_m2", iso, T, G / 1000)
    case(f, "weather", "error", "that is kW/m²")
    keep = np.ones(8760, bool)
    keep[2000 : 2000 + 29 * 24] = False
    f = write_weather("gap_29_days", iso[keep], T[keep], G[keep])
    case(f, "weather", "error", "for 696 h (29.0 days)", cli=True)
    tn = T.copy()
    tn[3000 : 3000 + 21 * 24] = np.nan
    f = write_weather("nan_run_3_weeks", iso, tn, G)
    case(f, "weather", "error", "no valid t_out_c for 504 h")
    dup = np.r_[np.arange(7000), [6999], np.arange(7000, 8760)]
    td = T[dup].copy()
    td[7000] += 2.0
    f = write_weather("duplicate_stamp_conflict", iso[dup], td, G[dup])
    case(f, "weather", "error", "twice with different values")
    gn = G.copy()
    gn[4000] = -150.0
    f = write_weather("negative_irradiance", iso, T, gn)
    case(f, "weather", "error", "below -20 W/m²")
    gh = G.copy()
    gh[4012] = 2500.0
    f = write_weather("irradiance_above_solar_constant", iso, T, gh)
    case(f, "weather", "error", "above 1500 W/m²")
    tm = T.copy()
    tm[100] = -999.0
    f = write_weather("missing_value_code", iso, tm, G)
    case(f, "weather", "error", "outside -60 ... 60 °C (first at line 102: -999)")
    f = write_weather("three_hourly", iso[::3], T[::3], G[::3])
    case(f, "weather", "error", "one row every 3 h")
    f = write_weather("half_year", iso[:4380], T[:4380], G[:4380])
    case(f, "weather", "error", "covers 182.5 days")
    f = write_weather("not_iso_times", year.strftime("%d.%m.%Y %H:%M"), T, G)
    case(f, "weather", "error", "not ISO 8601 (line 2: '01.01.2025 00:00')")
    naive_dst = (
        year.tz_localize("Etc/GMT-1").tz_convert("Europe/Amsterdam").strftime("%Y-%m-%dT%H:%M")
    )
    f = write_weather("local_clock_without_offsets", naive_dst, T, G)
    case(f, "weather", "error", "give UTC offsets")

    small = year[:3].strftime("%Y-%m-%dT%H:%M").tolist()
    f = write_weather(
        "mixed_offsets", [small[0] + "+01:00", small[1], small[2]], T[:3], G[:3], gz=False
    )
    case(f, "weather", "error", "mixes times with and without a UTC offset (line 3")
    (HERE / "weather" / "non_numeric.csv").write_text(
        "time,t_out_c,ghi_w_m2\n2025-01-01T00:00,3.1,0\n2025-01-01T01:00,3,1 ,0\n"
    )
    case("weather/non_numeric.csv", "weather", "error", "not a readable CSV")
    (HERE / "weather" / "text_value.csv").write_text(
        "time,t_out_c,ghi_w_m2\n2025-01-01T00:00,3.1,0\n2025-01-01T01:00,warm,0\n"
    )
    case(
        "weather/text_value.csv",
        "weather",
        "error",
        "t_out_c that is not a number (line 3: 'warm')",
    )
    (HERE / "weather" / "missing_column.csv").write_text(
        "time,temp,ghi_w_m2\n2025-01-01T00:00,3.1,0\n"
    )
    case("weather/missing_column.csv", "weather", "error", "lacks column(s) ['t_out_c']")
    (HERE / "weather" / "empty.csv").write_text("")
    case("weather/empty.csv", "weather", "error", "not a readable CSV")
    (HERE / "weather" / "header_only.csv").write_text("time,t_out_c,ghi_w_m2\n")
    case("weather/header_only.csv", "weather", "error", "has no rows")

    # repaired with a warning
    keep = np.ones(8760, bool)
    keep[5000:5002] = False
    f = write_weather("gap_2_hours", iso[keep], T[keep], G[keep])
    case(f, "weather", "warning", "filled 1 gap(s) in t_out_c")
    dup = np.r_[np.arange(8760), [10, 11]]
    f = write_weather("repeated_rows", iso[dup], T[dup], G[dup])
    case(f, "weather", "warning", "dropped 2 repeated row(s)")
    gs = G.copy()
    gs[[0, 1, 2]] = -2.0
    f = write_weather("night_offset_irradiance", iso, T, gs)
    case(f, "weather", "warning", "set 3 negative ghi_w_m2 value(s)")
    rev = np.arange(8760)[::-1]
    f = write_weather("reverse_order", iso[rev], T[rev], G[rev])
    case(f, "weather", "warning", "sorted them by time", same_as_try2010=True)


def main() -> None:
    grids()
    weather()
    (HERE / "cases.yaml").write_text(
        "# Written by make_hostile.py: how each hostile input must end (see its docstring).\n"
        + yaml.safe_dump(CASES, sort_keys=False, allow_unicode=True, width=120)
    )
    print(f"wrote {len(CASES)} cases")


if __name__ == "__main__":
    main()
