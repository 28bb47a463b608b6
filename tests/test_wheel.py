"""What a user of the published package gets: the wheel holds the demos as `pygase_demos`, with their
images, sounds, font and licences inside, declares the `pygase-demo` command, and puts nothing named
`demos` or `assets` into site-packages.

Builds the wheel offline (`pip wheel --no-deps --no-build-isolation --no-index`, from a copy of the
checkout so the work tree gets no build/ folder); `-m "not wheel"` leaves it out. `.ci/run` goes further:
it installs the wheel into a fresh venv and runs a demo from another folder.
"""

from __future__ import annotations

import configparser
import importlib.util
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
ASSETS = ROOT / "pygase_demos" / "assets"

pytestmark = pytest.mark.timeout(120)


def _can_build_offline() -> bool:
    """setuptools builds wheels by itself from 70.1 on; before that it needs the `wheel` package."""
    import setuptools

    version = tuple(int(part) for part in setuptools.__version__.split(".")[:2] if part.isdigit())
    return version >= (70, 1) or importlib.util.find_spec("wheel") is not None


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> zipfile.ZipFile:
    if not _can_build_offline():
        pytest.skip("building the wheel offline needs the 'wheel' package: pip install -e '.[test]'")
    tmp = tmp_path_factory.mktemp("wheel")
    source = tmp / "source"
    shutil.copytree(
        ROOT,
        source,
        ignore=shutil.ignore_patterns(
            ".git", ".venv", "__pycache__", "*.egg-info", "build", "dist", ".*_cache", ".hypothesis"
        ),
    )
    out = tmp / "dist"
    result = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "--no-index"]
        + ["--quiet", "--wheel-dir", str(out), str(source)],
        capture_output=True,
        text=True,
        timeout=100,
        env={**os.environ, "PIP_DISABLE_PIP_VERSION_CHECK": "1"},
    )
    assert result.returncode == 0, result.stdout + result.stderr
    (built,) = out.glob("pygase-*.whl")
    with zipfile.ZipFile(built) as archive:
        yield archive


@pytest.mark.wheel
def test_the_wheel_installs_only_our_own_top_level_names(wheel):
    top_level = {name.split("/")[0] for name in wheel.namelist()}
    dist_info = {name for name in top_level if name.endswith(".dist-info")}
    assert len(dist_info) == 1
    assert top_level - dist_info == {"pygase", "pygase_pygame", "pygase_demos"}  # no demos/, no assets/


@pytest.mark.wheel
def test_the_wheel_holds_every_demo_module_and_every_asset_with_its_licences(wheel):
    names = set(wheel.namelist())
    for path in (ROOT / "pygase_demos").rglob("*.py"):
        if "__pycache__" not in path.parts:
            assert path.relative_to(ROOT).as_posix() in names
    shipped = [path for path in ASSETS.rglob("*") if path.is_file() and "__pycache__" not in path.parts]
    kinds = {path.parent.name: 0 for path in shipped}
    for path in shipped:
        assert path.relative_to(ROOT).as_posix() in names, f"{path} is not in the wheel"
        kinds[path.parent.name] += 1
    assert kinds["images"] >= 10 and kinds["sounds"] >= 6
    for must in ("README.md", "fonts/DejaVuSans.ttf", "fonts/LICENSE-DejaVu.txt", "images/floor.png"):
        assert f"pygase_demos/assets/{must}" in names
    # The bytes are the checkout's, not a stale copy.
    floor = (ASSETS / "images" / "floor.png").read_bytes()
    assert wheel.read("pygase_demos/assets/images/floor.png") == floor
    assert b"licence" in wheel.read("pygase_demos/assets/README.md").lower()


@pytest.mark.wheel
def test_the_wheel_declares_the_pygase_demo_command(wheel):
    (entry_points,) = [name for name in wheel.namelist() if name.endswith(".dist-info/entry_points.txt")]
    parser = configparser.ConfigParser()
    parser.read_string(wheel.read(entry_points).decode())
    assert parser["console_scripts"]["pygase-demo"].strip() == "pygase_demos.__main__:main"


def test_the_assets_are_found_beside_the_package_not_the_checkout():
    import pygase_demos
    from pygase_demos import _assets

    beside_the_package = Path(pygase_demos.__file__).resolve().parent / "assets"
    assert beside_the_package == _assets.ASSETS
    assert (_assets.ASSETS / "images" / "floor.png").is_file() and _assets.FONT_FILE.is_file()


@pytest.mark.parametrize(
    "command, usage",
    [
        (["-m", "demos.dots"], "python -m demos.dots"),  # the checkout's shortcut, as README shows
        (["-m", "pygase_demos", "dots"], "pygase-demo dots"),  # what `pygase-demo dots` runs
        (["-m", "pygase_demos.dots"], "pygase-demo dots"),
    ],
)
def test_every_way_to_run_a_demo_reaches_it(command, usage):
    result = subprocess.run(
        [sys.executable, *command, "--help"], cwd=ROOT, capture_output=True, text=True, timeout=30
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith(f"usage: {usage} ")
