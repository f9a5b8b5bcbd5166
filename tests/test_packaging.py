"""The install path: pins in one place, mirrored by environment.yml; the CI and README contract."""

from __future__ import annotations

import re
import tomllib

import yaml
from conftest import REPO


def _pyproject_pins() -> dict[str, str]:
    meta = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    reqs = meta["dependencies"] + meta["optional-dependencies"]["dev"]
    pins = {}
    for req in reqs:
        m = re.fullmatch(r"([A-Za-z0-9_.\-]+)==([A-Za-z0-9_.+\-]+)", req)
        assert m, f"pyproject.toml: {req!r} is not an exact pin (name==version)"
        pins[m.group(1).lower()] = m.group(2)
    return pins


def _environment_pins() -> dict[str, str]:
    env = yaml.safe_load((REPO / "environment.yml").read_text())
    pip = next(d["pip"] for d in env["dependencies"] if isinstance(d, dict) and "pip" in d)
    pins = {}
    for line in pip:
        if line.startswith("-e"):
            continue
        name, version = line.split("==")
        pins[name.lower()] = version
    return pins


def test_every_dependency_is_pinned_exactly_and_torch_is_2_13_0():
    pins = _pyproject_pins()
    assert pins["torch"] == "2.13.0"
    required = {"torch", "jupyterlab", "matplotlib", "ipywidgets", "pandas", "fvcore"}
    assert required | {"scikit-image", "nbval"} <= set(pins)


def test_environment_yml_agrees_with_pyproject():
    assert _environment_pins() == _pyproject_pins()
    env = yaml.safe_load((REPO / "environment.yml").read_text())
    assert "python=3.11" in env["dependencies"]


def test_ci_runs_the_readme_test_command():
    ci = (REPO / ".ci" / "run").read_text()
    readme = (REPO / "README.md").read_text()
    assert "make test" in ci
    assert "make test" in readme and "make lab" in readme


def test_importing_the_kit_pulls_in_no_plotting_or_widgets():
    import subprocess
    import sys

    code = (
        "import sys, sr_kit, sr_kit.config, sr_kit.imresize, sr_kit.metrics, sr_kit.models;"
        "bad = [m for m in ('matplotlib', 'ipywidgets', 'pandas') if m in sys.modules];"
        "print(','.join(bad))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""


def test_top_level_names_load_lazily():
    import subprocess
    import sys

    code = (
        "import sys, sr_kit; assert 'torch' not in sys.modules; "
        "m = sr_kit.build_model('rfdn', scale=2); print(type(m).__name__, sr_kit.__version__)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["DistillNet", "0.1.0"]
    import sr_kit

    assert set(sr_kit.__all__) >= {"build_model", "load_model", "fit", "ablate"}
    assert all(callable(getattr(sr_kit, name)) for name in sr_kit._LAZY)
    assert all(callable(getattr(sr_kit, name)) for name in sr_kit._LAZY)  # also on second access
