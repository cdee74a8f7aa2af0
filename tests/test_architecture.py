"""The structure holds: no import circle among twin's modules (imports inside functions and
under TYPE_CHECKING count), no module imports one of a layer above it, and the modules that
say they do not need Pyomo do not load it."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "twin"

#: Layers, bottom up: a module may import its own layer and the ones below. The longest
#: matching prefix decides a module's layer.
LAYERS: dict[str, int] = {
    # core data and errors
    "twin.errors": 0,
    "twin.timegrid": 0,
    "twin.fleet": 0,
    "twin.config": 0,
    "twin.catalog": 0,
    "twin.schema": 0,
    # inputs: weather, scenario, population, feeders (and their ratings), tariffs
    "twin.weather": 1,
    "twin.scenario": 1,
    "twin.population": 1,
    "twin.tariffs": 1,
    "twin.inputs": 1,
    "twin.grid.feeders": 1,
    "twin.grid.netjson": 1,
    "twin.grid.elements": 1,
    "twin.grid.ratings": 1,
    "twin.grid.regions": 1,  # a region's LV feeders and MV grid, cut out of its net
    # exogenous profile generators (base load, PV output): inputs like the weather, pure
    # functions of the weather and the households' parameters (twin.inputs draws the base
    # load and the feeder's own PV with them)
    "twin.devices.baseload": 1,
    "twin.devices.pv": 1,
    # physics and the grid
    "twin.devices": 2,
    "twin.grid": 2,
    "twin.kpi": 2,
    "twin.service": 2,
    # what the deciding side may read: forecasts, measurements, the feeder view
    "twin.forecast": 3,
    "twin.measure": 3,
    "twin.view": 3,
    # optimisation
    "twin.optim": 4,
    # contracts
    "twin.contracts": 5,
    # model and pipeline
    "twin.agents": 6,
    "twin.model": 6,
    "twin.result": 6,
    "twin.pipeline": 6,
    "twin.memory": 6,  # lets finished models go (mesa keeps them)
    # results and writing
    "twin.plots": 7,
    "twin.writer": 7,
    # studies and the command line (and the package's public API)
    "twin.compare": 8,
    "twin.hosting": 8,
    "twin.sensors": 8,
    "twin.enhance": 8,
    "twin.region": 8,
    "twin.report": 8,
    "twin.cli": 8,
    "twin.helptext": 8,  # the command line's generated --help
    "twin": 8,
}


def modules() -> dict[str, Path]:
    out = {}
    for f in PACKAGE.rglob("*.py"):
        parts = list(f.relative_to(PACKAGE.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        out[".".join(parts)] = f
    return out


def import_graph() -> dict[str, set[str]]:
    """Module -> the twin modules it imports (anywhere in the file)."""
    mods = modules()
    graph: dict[str, set[str]] = {m: set() for m in mods}
    for m, f in mods.items():
        tree = ast.parse(f.read_text(), filename=str(f))
        package = m.split(".") if f.name == "__init__.py" else m.split(".")[:-1]
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                if node.level:
                    base = package[: len(package) - node.level + 1]
                    target = ".".join(base + ([node.module] if node.module else []))
                else:
                    target = node.module or ""
                names = [target] + [f"{target}.{a.name}" for a in node.names]
            else:
                continue
            for name in names:
                while name and name not in mods:
                    name = name.rpartition(".")[0]
                if name and name != m and not m.startswith(name + "."):
                    graph[m].add(name)
    return graph


def layer(module: str) -> int:
    best = max((p for p in LAYERS if module == p or module.startswith(p + ".")), key=len)
    return LAYERS[best]


def cycles(graph: dict[str, set[str]]) -> list[str]:
    found, seen, path = set(), set(), []

    def visit(v: str) -> None:
        path.append(v)
        for w in sorted(graph[v]):
            if w in path:
                found.add(" -> ".join(path[path.index(w) :] + [w]))
            elif w not in seen:
                visit(w)
        path.pop()
        seen.add(v)

    for v in sorted(graph):
        if v not in seen:
            visit(v)
    return sorted(found)


def test_the_graph_sees_imports_inside_functions_and_type_checking_blocks():
    g = import_graph()
    assert "twin.pipeline" in g["twin"]  # twin/__init__ imports it inside __getattr__
    assert "twin.optim.allocation" in g["twin.contracts.performance.dso"]  # inside __init__


def test_no_import_circle():
    assert cycles(import_graph()) == []


def test_a_circle_would_be_found():
    g = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": set()}
    assert cycles(g) == ["a -> b -> c -> a"]


def test_every_module_has_a_layer_and_imports_none_above_it():
    upward = [
        f"{m} (layer {layer(m)}) imports {t} (layer {layer(t)})"
        for m, targets in import_graph().items()
        for t in sorted(targets)
        if layer(t) > layer(m)
    ]
    assert upward == []


@pytest.mark.parametrize(
    "module",
    [
        "twin.optim",
        "twin.optim.limits",
        "twin.optim.devices",
        "twin.optim.envelope",
        "twin.optim.options",
        "twin.contracts",
        "twin.pipeline",
    ],
)
def test_modules_that_do_not_need_pyomo_do_not_load_it(module):
    code = f"import sys, {module}; print('pyomo' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


#: Where the deciding side lives: a contract and its optimiser read the feeder only through
#: the view's public accessors (twin/view.py: forecasts, the DSO's meters, the network).
DECIDING = ("twin.contracts", "twin.optim")
#: The one adapter that reaches into the solver's (Pyomo appsi / highspy) internals, by design
#: (README: "solver internals behind one adapter"); not twin's state.
SOLVER_ADAPTER = "twin.optim.persistent"


def private_reads(module: str, path: Path) -> list[str]:
    """``obj._name`` reads of another object's private attribute (``self``/``cls`` excepted)."""
    out = []
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if (
            isinstance(node, ast.Attribute)
            and node.attr.startswith("_")
            and not node.attr.startswith("__")
            and not (isinstance(node.value, ast.Name) and node.value.id in ("self", "cls"))
        ):
            out.append(f"{module}:{node.lineno}: .{node.attr}")
    return out


def test_the_deciding_side_reads_no_private_state():
    """The truth behind the DSO's meters (twin.measure.DsoMeters keeps it in private slots,
    to measure it) and behind the households' view is reachable only through their public
    readings: no contract or optimiser module reads another object's private attribute."""
    found = [
        r
        for m, f in modules().items()
        if m.startswith(DECIDING) and m != SOLVER_ADAPTER
        for r in private_reads(m, f)
    ]
    assert found == []


def test_a_private_read_would_be_found(tmp_path):
    f = tmp_path / "x.py"
    f.write_text("def f(view):\n    return view.meters._p_net[0] + self._ok\n")
    assert private_reads("x", f) == ["x:2: ._p_net"]


def test_the_dso_view_reads_the_measurement_presets_meters():
    """The DSO's view is given the preset's meters (what its sensors deliver), never the
    households' own exact meters."""
    import inspect

    from twin.view import DsoView

    hint = inspect.signature(DsoView.__init__).parameters["meters"].annotation
    assert hint in ("DsoMeters", "twin.measure.DsoMeters")
    src = (PACKAGE / "model.py").read_text()
    assert '"meters": self.dso_meters' in src
