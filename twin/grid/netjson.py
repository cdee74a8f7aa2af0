"""Read a pandapower JSON net as data only.

``pandapower.from_json`` rebuilds every ``{"_module": ..., "_class": ...}`` object of a file by
importing the named module and calling what it names: a grid file can make it import any
importable module (the current folder is on ``sys.path`` in a notebook or ``python -m``) and
return any function (``{"_module": "antigravity", "_class": "function", ...}``). A DataFrame
whose ``_object`` is an absolute path ending in ``.json`` makes pandas read that file, so a net
can carry another file's contents into twin's feeder cache.

:func:`read_net_json` reads the same format with an allowlist of the few classes that
``pandapower.to_json`` writes for an ordinary net, and builds each one itself:

* ``pandapower.auxiliary.pandapowerNet`` (only as the file's top object, its ``_object`` a JSON
  object), started from ``pandapower.create_empty_network()`` as pandapower does;
* ``pandas`` ``DataFrame`` and ``Series`` whose ``_object`` is JSON *text* (parsed from an
  ``io.StringIO``, never opened as a path), with only the keys pandapower writes (``orient``
  split/columns/index, plain ``dtype`` names, index/column names, multi-index flags); rebuilt
  by pandapower's own ``FromSerializableRegistry.DataFrame``/``Series`` code so that tables
  come out exactly as ``pandapower.from_json`` makes them;
* the scalars and containers pandapower writes into object columns: numpy integer, float and
  bool scalars, ``numpy.array``, ``pandas.Index``, and ``tuple``, ``set``, ``frozenset``,
  ``complex``.

Nothing is imported by name and no file other than the one given is read; anything else
(controllers, functions, networkx graphs, characteristics, geopandas/shapely objects, any
other module) ends in one :class:`FeederError` naming the table and the class. The result then
goes through ``pandapower.convert_format`` like ``pandapower.from_json`` does.
"""

from __future__ import annotations

import io
import json
import re
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from pandapower.auxiliary import pandapowerNet

from twin.errors import TwinError

__all__ = ["FeederError", "read_net_json", "read_net_json_text"]


class FeederError(TwinError):
    """A feeder spec or file cannot be turned into a usable feeder (one-line message).

    Defined here (and re-exported by :mod:`twin.grid.feeders`) so that the JSON reader and
    the feeder checks raise the same class.
    """


_NET = ("pandapower.auxiliary", "pandapowerNet")
_FRAME_MODULES = ("pandas.core.frame", "pandas")
_SERIES_MODULES = ("pandas.core.series", "pandas")
_NUMPY_SCALARS: dict[str, Callable[[Any], Any]] = {
    name: getattr(np, name)
    for name in (
        "int8",
        "int16",
        "int32",
        "int64",
        "uint8",
        "uint16",
        "uint32",
        "uint64",
        "float16",
        "float32",
        "float64",
        "longlong",
        "ulonglong",
        "intc",
        "uintc",
    )
}
_BUILTINS: dict[str, Callable[[Any], Any]] = {
    "tuple": tuple,
    "set": set,
    "frozenset": frozenset,
    "complex": complex,
}
#: Keys besides ``_module``/``_class``/``_object`` that pandapower writes for a DataFrame/Series.
_FRAME_KEYS = frozenset(
    {
        "orient",
        "dtype",
        "index_name",
        "column_name",
        "index_names",
        "column_names",
        "is_multiindex",
        "is_multicolumn",
    }
)
_SERIES_KEYS = frozenset({"orient", "dtype", "typ", "index_name", "index_names", "is_multiindex"})
_ORIENTS = frozenset({"split", "columns", "index"})
#: dtype names a pandapower table may carry; anything else (e.g. ``string[pyarrow]``, which
#: would import pyarrow) is refused.
_DTYPE = re.compile(
    r"^(object|bool|boolean|category|string|str|u?int(8|16|32|64)|U?Int(8|16|32|64)"
    r"|[Ff]loat(16|32|64)|complex(64|128)|datetime64\[(ns|us|ms|s)(, ?UTC)?\]"
    r"|timedelta64\[(ns|us|ms|s)\])$"
)
_FIX = "remove that entry, or re-save the net with pandapower.to_json from plain pandapower tables"


class _Refused(Exception):
    """Internal: the file holds something twin does not read (message without the file)."""


def _is_json_text(text: str) -> bool:
    return text.lstrip()[:1] in ("{", "[")


def _check_keys(node: dict, allowed: frozenset[str], where: str, what: str) -> dict[str, Any]:
    extra = set(node) - allowed - {"_module", "_class", "_object"}
    if extra:
        raise _Refused(
            f"{where} is a {what} with key(s) {sorted(extra)} that pandapower does not write"
        )
    return {k: v for k, v in node.items() if k in allowed}


def _check_dtype(value: Any, where: str) -> None:
    names = value.values() if isinstance(value, dict) else [value]
    for name in names:
        if not isinstance(name, str) or not _DTYPE.match(name):
            raise _Refused(f"{where} has dtype {str(name)[:40]!r}, which twin does not read")


class _Decoder:
    """Top-down decoder: builds allowlisted objects, recurses into plain JSON containers."""

    def __init__(self) -> None:
        from pandapower.io_utils import FromSerializableRegistry

        self._registry = FromSerializableRegistry

    def decode(self, node: Any, where: str) -> Any:
        if isinstance(node, dict):
            if "_module" in node or "_class" in node:
                return self._construct(node, where)
            return {k: self.decode(v, f"{where}.{k}") for k, v in node.items()}
        if isinstance(node, list):
            return [self.decode(v, f"{where}[{i}]") for i, v in enumerate(node)]
        return node

    def _cell_hook(self, where: str) -> Callable[..., Any]:
        def hook(cell: Any, **_: Any) -> Any:  # pandapower calls it with its own keywords
            return self.decode(cell, f"{where} cell") if isinstance(cell, dict | list) else cell

        return hook

    def _pandas(self, node: dict, where: str, kind: str) -> Any:
        allowed = _FRAME_KEYS if kind == "DataFrame" else _SERIES_KEYS
        d = _check_keys(node, allowed, where, kind)
        text = node.get("_object")
        if not isinstance(text, str) or not _is_json_text(text):
            shown = text[:60] if isinstance(text, str) else type(text).__name__
            raise _Refused(
                f"{where} is a {kind} whose data is not JSON text ({shown!r}); twin never "
                "reads a file named inside a grid file"
            )
        if d.get("orient", "split") not in _ORIENTS:
            raise _Refused(f"{where} has orient {d.get('orient')!r}, which twin does not read")
        if kind == "Series" and d.get("typ", "series") != "series":
            raise _Refused(f"{where} has typ {d.get('typ')!r}, which twin does not read")
        if "dtype" in d:
            _check_dtype(d["dtype"], where)
        for key in ("index_name", "column_name"):
            if key in d and not isinstance(d[key], str | int | type(None)):
                raise _Refused(f"{where} has a {key} that is not a plain name")
        reg = self._registry(io.StringIO(text), dict(d), self._cell_hook(where))
        build = self._registry.DataFrame if kind == "DataFrame" else self._registry.Series
        return build(reg)

    def _construct(self, node: dict, where: str) -> Any:
        module, cls = node.get("_module"), node.get("_class")
        if not isinstance(module, str) or not isinstance(cls, str):
            raise _Refused(f"{where} has a _module/_class entry that is not a pair of names")
        label = f"{module}.{cls}"
        obj = node.get("_object")
        if (module, cls) == _NET:
            if where != "net":
                raise _Refused(f"{where} is a nested pandapowerNet, which twin does not read")
            if not isinstance(obj, dict):
                raise _Refused("the net's _object is not a JSON object (pandapower writes one)")
            bad = [k for k in obj if not isinstance(k, str) or k.startswith("_")]
            if bad:
                raise _Refused(f"net has private key(s) {bad[:3]} that pandapower does not write")
            import pandapower as pp

            net = pp.create_empty_network()
            decoded = {k: self.decode(v, f"net.{k}") for k, v in obj.items()}
            for key, value in decoded.items():
                if isinstance(net.get(key), pd.DataFrame) and not isinstance(value, pd.DataFrame):
                    raise _Refused(
                        f"net.{key} is a {type(value).__name__}, not a table (pandapower "
                        "writes a DataFrame)"
                    )
            net.update(decoded)
            return net
        if cls == "DataFrame" and module in _FRAME_MODULES:
            return self._pandas(node, where, "DataFrame")
        if cls == "Series" and module in _SERIES_MODULES:
            return self._pandas(node, where, "Series")
        refused = _Refused(
            f"{where} holds an object of class '{label}', which twin does not load (grid files "
            "are read as data: tables, numbers and text only)"
        )
        if set(node) - {"_module", "_class", "_object", "dtype"}:
            raise refused
        if module == "numpy" and cls in _NUMPY_SCALARS and isinstance(obj, int | float | str):
            return _NUMPY_SCALARS[cls](obj)
        if module == "numpy" and cls in ("bool", "bool_") and isinstance(obj, bool | str | int):
            # pandapower writes "true"/"false" (and reads both back as True)
            return bool(obj.strip().lower() == "true") if isinstance(obj, str) else bool(obj)
        if module == "numpy" and cls == "array" and isinstance(obj, list):
            return np.array([self.decode(x, f"{where}[{i}]") for i, x in enumerate(obj)])
        if module.startswith("pandas") and cls == "Index" and isinstance(obj, list):
            dtype = node.get("dtype")
            if dtype is not None:
                _check_dtype(dtype, where)
            return pd.Index([self.decode(x, where) for x in obj], dtype=dtype)
        if module == "builtins" and cls in _BUILTINS:
            if cls == "complex" and isinstance(obj, str | int | float):
                return complex(obj)
            if cls != "complex" and isinstance(obj, list):
                return _BUILTINS[cls](self.decode(x, where) for x in obj)
        raise refused


def read_net_json_text(text: str, source: str) -> pandapowerNet:
    """Parse pandapower JSON text as data only; ``source`` names it in error messages."""
    try:
        tree = json.loads(text)
    except (ValueError, RecursionError) as exc:
        raise FeederError(
            f"cannot read pandapower net from '{source}' (not JSON: {_short(exc)}): "
            "write it with pandapower.to_json"
        ) from None
    if not isinstance(tree, dict) or (tree.get("_module"), tree.get("_class")) != _NET:
        hint = (
            "it is in an old pandapower format (before 2.1): re-save it with a current "
            "pandapower (pandapower.to_json)"
            if isinstance(tree, dict) and "bus" in tree
            else "write it with pandapower.to_json"
        )
        raise FeederError(f"'{source}' is not a pandapower net: {hint}")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            net = _Decoder().decode(tree, "net")
            from pandapower.convert_format import convert_format

            convert_format(net, drop_invalid_geodata=False, donot_open_newer=True)
    except _Refused as exc:
        raise FeederError(f"grid file '{source}': {exc}: {_FIX}") from None
    except (Exception, RecursionError) as exc:  # malformed tables: pandas/pandapower errors
        raise FeederError(
            f"cannot read pandapower net from '{source}' ({type(exc).__name__}: "
            f"{_short(exc)}): write it with pandapower.to_json"
        ) from None
    return net


def read_net_json(path: str | Path) -> pandapowerNet:
    """Read a pandapower JSON file as data only (see the module docstring)."""
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise FeederError(
            f"cannot read grid file '{p}' ({type(exc).__name__}: {_short(exc)}): give a "
            "readable pandapower .json file"
        ) from None
    return read_net_json_text(text, str(p))


def _short(exc: BaseException) -> str:
    return " ".join(str(exc).split())[:200]
