"""Repository contracts: README commands, CI script, pins, lint, import hygiene."""

from __future__ import annotations

import configparser
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def readme_commands() -> list[str]:
    text = (ROOT / "README.md").read_text()
    return [block.strip() for block in re.findall(r"```bash\n(.*?)```", text, flags=re.S)]


def test_readme_starts_with_the_two_setup_commands():
    text = (ROOT / "README.md").read_text()
    commands = readme_commands()
    assert len(commands) >= 2
    demo, tests = commands[:2]
    # Nothing but the title comes before the two commands.
    before = text[: text.index("```bash")]
    assert before.strip().startswith("# neuroenc") and before.strip().count("\n") == 0
    assert demo.startswith("python3 -m venv") and demo.endswith("neuroenc demo")
    assert "-c constraints.txt" in demo and "-c constraints.txt" in tests
    assert tests.endswith("pytest")


def test_ci_runs_the_readme_test_command_verbatim():
    ci = (ROOT / ".ci" / "run").read_text().splitlines()
    test_command = readme_commands()[1]
    assert test_command in ci
    executable = [line for line in ci if line.strip() and not line.startswith("#")]
    assert executable[-1] == test_command


def test_constraints_pin_torch_exactly_and_cover_requirements():
    lines = [ln.strip() for ln in (ROOT / "constraints.txt").read_text().splitlines()]
    pins = dict(ln.split("==", 1) for ln in lines if ln and not ln.startswith("#"))
    pins = {k.lower(): v for k, v in pins.items()}
    assert pins["torch"] == "2.13.0"
    cfg = configparser.ConfigParser()
    cfg.read(ROOT / "setup.cfg")
    required = [
        re.split(r"[<>=!\[ ]", r.strip())[0].lower()
        for r in cfg["options"]["install_requires"].split("\n")
        if r.strip()
    ]
    for extra in ("torch", "dask", "moabb", "nwb", "dev"):
        required += [
            re.split(r"[<>=!\[ ]", r.strip())[0].lower()
            for r in cfg["options.extras_require"][extra].split("\n")
            if r.strip()
        ]
    missing = sorted({r for r in required if r.replace("_", "-") not in pins})
    assert not missing, f"constraints.txt does not pin: {missing}"


def test_setup_cfg_declares_extras_and_console_script():
    cfg = configparser.ConfigParser()
    cfg.read(ROOT / "setup.cfg")
    extras = cfg["options.extras_require"]
    assert {"torch", "dask", "moabb", "nwb", "dev"} <= set(extras)
    for name in ("pytest", "hypothesis", "ruff", "pyriemann", "rsatoolbox", "himalaya", "moabb"):
        assert name in extras["dev"]
    assert "distributed" in extras["dask"] and "pynwb" in extras["nwb"]
    assert "neuroenc = neuroenc.cli.main:main" in cfg["options.entry_points"]["console_scripts"]
    for dep in ("numpy", "scipy", "scikit-learn", "numba", "h5py", "mne", "nilearn", "pandas", "matplotlib"):
        assert dep in cfg["options"]["install_requires"]


def test_import_is_light():
    """`import neuroenc` must not import heavy or compiled-on-load libraries."""
    code = (
        "import sys, neuroenc\n"
        "names = ('torch', 'numba', 'mne', 'nilearn', 'sklearn', 'matplotlib', 'scipy')\n"
        "heavy = [m for m in names if m in sys.modules]\n"
        "print(','.join(heavy))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "", f"import neuroenc pulled in: {out.stdout.strip()}"


def test_lint_is_clean():
    out = subprocess.run(
        [sys.executable, "-m", "ruff", "check", "neuroenc", "tests", "benchmarks", "docs"],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    assert out.returncode == 0, out.stdout + out.stderr


def test_exported_names_are_not_also_submodules():
    """A submodule named like an exported function replaces it in the package once imported."""
    import importlib
    import pkgutil

    import neuroenc

    clashes = []
    for info in pkgutil.iter_modules(neuroenc.__path__):
        if not info.ispkg or info.name.startswith("_"):
            continue
        package = importlib.import_module(f"neuroenc.{info.name}")
        exported = set(getattr(package, "_EXPORTS", {})) | set(getattr(package, "__all__", []))
        submodules = {m.name for m in pkgutil.iter_modules(package.__path__)}
        clashes += [f"neuroenc.{info.name}.{name}" for name in sorted(exported & submodules)]
    assert clashes == []
