"""A wheel built from a clean checkout carries the configs and scenarios, and a non-editable
install of it runs ``twin`` from an empty folder."""

from __future__ import annotations

import os
import shutil
import site
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def clean_copy(dest: Path) -> Path:
    """The tracked files of the checkout (what a fresh clone holds), or the tree without
    build products when this is not a git checkout."""
    try:
        files = subprocess.run(
            ["git", "ls-files", "-z"], cwd=REPO, capture_output=True, check=True
        ).stdout.split(b"\0")
        paths = [REPO / f.decode() for f in files if f]
    except (OSError, subprocess.CalledProcessError):
        skip = {".venv", ".git", "results", "build", "dist", "__pycache__"}
        paths = [p for p in REPO.rglob("*") if p.is_file() and not skip & set(p.parts)]
    for src in paths:
        if src.is_file():
            target = dest / src.relative_to(REPO)
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, target)
    return dest


@pytest.mark.slow
def test_wheel_ships_configs_and_runs_from_an_empty_folder(tmp_path):
    src = clean_copy(tmp_path / "checkout")
    dist = tmp_path / "dist"
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(dist), str(src)],
        check=True,
        capture_output=True,
        timeout=600,
    )
    (wheel,) = dist.glob("twin-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    assert {"twin/configs/config.yaml", "twin/configs/contract/performance.yaml"} <= names
    assert "twin/scenarios/nl-2040-central.yaml" in names

    # a fresh venv with the wheel installed (not editable); its dependencies come from the
    # test environment's site-packages, after the venv's own (so the wheel's twin wins)
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=300)
    py = venv / "bin" / "python"
    subprocess.run(
        [str(py), "-m", "pip", "install", "-q", "--no-deps", "--no-index", str(wheel)],
        check=True,
        capture_output=True,
        timeout=300,
    )
    purelib = subprocess.run(
        [str(py), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    deps = [p for p in site.getsitepackages() if Path(p).is_dir()]
    (Path(purelib) / "twin_test_deps.pth").write_text("\n".join(deps) + "\n")

    empty = tmp_path / "empty"
    empty.mkdir()
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "HYDRA_FULL_ERROR")}
    env["MPLBACKEND"] = "Agg"
    where = subprocess.run(
        [str(py), "-c", "import twin.config as c; print(c.CONFIG_DIR)"],
        cwd=empty,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    assert Path(where).is_relative_to(Path(purelib))  # the installed copy, not the checkout
    out = subprocess.run(
        [str(venv / "bin" / "twin"), "sim=day", "output.figures=false", "output.progress=false"],
        cwd=empty,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert out.returncode == 0, out.stderr[-2000:]
    (done,) = empty.glob("results/runs/*/DONE")
    assert (done.parent / "kpis.json").is_file() and "1-LV-urban6--0-sw" in out.stdout
