"""No untrusted deserialization anywhere in the project: no pickle, eval/exec, marshal or unsafe YAML."""

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SOURCES = [p for folder in ("harness", "envs", "experiments", "tests") for p in (ROOT / folder).rglob("*.py")]

FORBIDDEN_MODULES = {"pickle", "cPickle", "dill", "cloudpickle", "marshal", "shelve", "yaml", "joblib"}
FORBIDDEN_CALLS = {"eval", "exec", "compile", "__import__"}


def _problems(path: Path) -> list[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [f"import {a.name}" for a in node.names if a.name.split(".")[0] in FORBIDDEN_MODULES]
        elif isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] in FORBIDDEN_MODULES:
            found.append(f"from {node.module} import ...")
        elif isinstance(node, ast.Call):
            func = node.func
            if isinstance(func, ast.Name) and func.id in FORBIDDEN_CALLS:
                found.append(f"{func.id}(...) at line {node.lineno}")
            # np.load(..., allow_pickle=True) and torch-style loaders unpickle too.
            for keyword in node.keywords:
                if keyword.arg == "allow_pickle" and not (
                    isinstance(keyword.value, ast.Constant) and keyword.value.value is False
                ):
                    found.append(f"allow_pickle at line {node.lineno}")
    return [f"{path.relative_to(ROOT)}: {p}" for p in found]


def test_sources_were_found():
    assert any(p.name == "runner.py" for p in SOURCES) and len(SOURCES) > 10


def test_no_untrusted_deserialization():
    problems = [p for path in SOURCES if path.name != "test_safety.py" for p in _problems(path)]
    assert problems == []


def test_the_scanner_catches_what_it_should(tmp_path):
    bad = tmp_path / "bad.py"
    bad.write_text(
        "import pickle\nfrom yaml import load\nx = eval('1')\nimport numpy as np\nnp.load('f', allow_pickle=True)\n"
    )
    rel = bad.relative_to(tmp_path)
    global ROOT
    saved, ROOT = ROOT, tmp_path
    try:
        problems = _problems(bad)
    finally:
        ROOT = saved
    assert len(problems) == 4, problems
    assert str(rel) in problems[0]
