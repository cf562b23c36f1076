"""The package's architecture as tests: layers, the TensorFlow-free core, and the installed entry points."""

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

_NO_TF = """
import sys
from harness.cli import main
code = main({argv!r})
loaded = sorted(m for m in ("tensorflow", "tf_keras", "keras", "rl") if m in sys.modules)
print("LOADED", loaded, "CODE", code)
"""


@pytest.mark.parametrize(
    "argv, code",
    [
        (["list", "--fields"], 0),
        (["run", "no_such_experiment"], 2),
        (["run", "catch_dense", "--set", "gama=0.9"], 2),
        (["run", "catch_dense", "--set", "gamma=2"], 2),
        (["run", "catch_dense", "--steps", "0"], 2),
        (["sweep", "catch_dense", "--seeds", "x"], 2),
        (["compare", "catch_dense", "catch_dense"], 2),
        (["tune", "catch_dense", "--pruner", "x"], 2),
        (["tune", "catch_dense", "--storage", "mysql://me@host/db"], 2),
        (["tune-report", "no_such_study", "--runs-dir", "/no/such/folder"], 2),
        (["--experiments", "/no/such/folder", "list"], 2),
        (["runs", "--runs-dir", "/no/such/folder"], 2),
    ],
)
def test_listing_and_rejecting_input_never_imports_tensorflow(argv, code):
    result = subprocess.run(
        [sys.executable, "-c", _NO_TF.format(argv=argv)], cwd=ROOT, capture_output=True, text=True, timeout=60
    )
    assert f"LOADED [] CODE {code}" in result.stdout, result.stdout + result.stderr
    if code == 2:
        (line,) = result.stderr.strip().splitlines()  # one line, no traceback
        assert line.startswith("error: ")


def test_import_contracts_hold():
    """import-linter's contracts in pyproject.toml: layers, the TensorFlow-free core, no cycles."""
    lint_imports = Path(sys.executable).parent / "lint-imports"
    result = subprocess.run([str(lint_imports)], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout[-3000:]
    assert "3 kept, 0 broken" in result.stdout


def test_the_console_script_is_the_module():
    script = shutil.which("dqn-harness", path=str(Path(sys.executable).parent))
    assert script is not None, "pyproject's console script is not installed"
    by_script = subprocess.run([script, "list"], capture_output=True, text=True, timeout=60)
    by_module = subprocess.run([sys.executable, "-m", "harness", "list"], capture_output=True, text=True, timeout=60)
    assert by_script.returncode == by_module.returncode == 0
    assert by_script.stdout == by_module.stdout and "catch_dense" in by_script.stdout


def test_harness_is_imported_from_anywhere(tmp_path):
    """Installed, not reached through sys.path: a subprocess in an unrelated folder finds it."""
    result = subprocess.run(
        [sys.executable, "-m", "harness", "list"], cwd=tmp_path, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0 and "cave_conv" in result.stdout, result.stderr


def test_no_path_manipulation_anywhere():
    offenders = []
    for path in [*ROOT.glob("harness/**/*.py"), *ROOT.glob("bench/*.py"), *ROOT.glob("tests/*.py"), ROOT / "Makefile"]:
        if path.name == "test_layout.py":
            continue
        text = path.read_text()
        if "sys.path" in text or "PYTHONPATH" in text:
            offenders.append(str(path.relative_to(ROOT)))
    assert offenders == []


@pytest.mark.parametrize("package", ["core", "kerasrl", "run", "launch", "report"])
def test_each_folder_says_what_it_owns(package):
    """A layer's __init__ names every module in it and what the layer may import."""
    folder = ROOT / "harness" / package
    doc = (folder / "__init__.py").read_text()
    modules = sorted(p.stem for p in folder.glob("*.py") if p.stem != "__init__")
    missing = [m for m in modules if f"  {m} " not in doc and f"  {m}\n" not in doc]
    assert missing == [], f"harness/{package}/__init__.py does not list {missing}"
    assert "May import" in doc
    top = (ROOT / "harness" / "__init__.py").read_text()
    assert f"{package}/" in top
