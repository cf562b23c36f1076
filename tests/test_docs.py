"""The docs name only make targets, make variables, subcommands and flags that exist.

README.md and docs/*.md are read; in their code spans and code blocks every `make <target>` (with
the `NAME=value` variables right after it) is checked against the Makefile, every
`python -m harness ...` / `dqn-harness ...` command against `harness.cli.build_parser()`, and every
`python -m bench.<script> ...` against that script's own parser. Fast: no TensorFlow is imported
(harness.cli and bench.* import none at top level).
"""

from __future__ import annotations

import argparse
import importlib
import re
import shlex
from dataclasses import dataclass
from pathlib import Path

import pytest

from harness.cli import build_parser

ROOT = Path(__file__).resolve().parent.parent
MAKEFILE = ROOT / "Makefile"
DOC_FILES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]

# --- Extracting code from Markdown -------------------------------------------------------------

_FENCE = re.compile(r"^ {0,3}(```+|~~~+)[^\n]*\n(.*?)^ {0,3}\1[ \t]*$", re.S | re.M)
_SPAN = re.compile(r"(?<!`)(`+)(?!`)(.+?)(?<!`)\1(?!`)", re.S)


def code_snippets(markdown: str) -> list[str]:
    """The text of every fenced code block and every inline code span."""
    blocks = [m.group(2) for m in _FENCE.finditer(markdown)]
    prose = _FENCE.sub("", markdown)
    # In a table cell `\|` is a literal pipe, inside code spans too.
    spans = [m.group(2).replace("\\|", "|") for m in _SPAN.finditer(prose)]
    return blocks + spans


# --- make targets and variables ----------------------------------------------------------------

_MAKE = re.compile(r"(?<![\w.$/(-])make[ \t]+([a-z][\w.-]*)")
_MAKE_VAR = re.compile(r"""[ \t]+\[?([A-Za-z_][A-Za-z0-9_]*)=("[^"]*"|'[^']*'|[^\s\]]*)\]?""")


@dataclass(frozen=True)
class MakeCall:
    target: str
    variables: tuple[str, ...]
    text: str


def make_calls(code: str) -> list[MakeCall]:
    """Every `make <target> [NAME=value ...]` in a piece of code."""
    calls = []
    for match in _MAKE.finditer(code):
        variables, end = [], match.end()
        while var := _MAKE_VAR.match(code, end):
            variables.append(var.group(1))
            end = var.end()
        calls.append(MakeCall(match.group(1), tuple(variables), code[match.start() : end]))
    return calls


_RULE = re.compile(r"^([A-Za-z0-9_][^\s:=#]*(?:[ \t]+[^\s:=#]+)*)[ \t]*:(?!=)")


def makefile_targets(text: str) -> set[str]:
    """Targets of the Makefile: rule lines `name ...:` and the names in `.PHONY:` lines."""
    targets: set[str] = set()
    for line in text.splitlines():
        if line.startswith(".PHONY:"):
            targets.update(line.split(":", 1)[1].split())
        elif match := _RULE.match(line):
            targets.update(match.group(1).split())
    return {t for t in targets if not t.startswith((".", "$"))}


def makefile_has_variable(text: str, name: str) -> bool:
    """`name` is read (`$(name)`) or assigned (`name ?= ...`) somewhere in the Makefile."""
    used = re.search(rf"\$\({re.escape(name)}\)", text)
    assigned = re.search(rf"^(?:export[ \t]+)?{re.escape(name)}[ \t]*[:?+]?=", text, re.M)
    return bool(used or assigned)


def make_problems(code: str, makefile: str) -> list[str]:
    """What in `code` names a make target or variable the Makefile does not have."""
    targets = makefile_targets(makefile)
    problems = []
    for call in make_calls(code):
        if call.target not in targets:
            problems.append(f"`{call.text}`: no target {call.target!r} in the Makefile")
        for name in call.variables:
            if not makefile_has_variable(makefile, name):
                problems.append(f"`{call.text}`: the Makefile has no variable {name}")
    return problems


# --- CLI commands ------------------------------------------------------------------------------

_HARNESS = re.compile(r"(?:python[\w.]*[ \t]+-m[ \t]+harness(?![\w.])|(?<![\w.-])dqn-harness(?![\w\[.:-]))")
_BENCH = re.compile(r"python[\w.]*[ \t]+-m[ \t]+bench\.(\w+)")
# Where a shell command ends on its line: a separator, a pipe, a comment or a closing parenthesis.
_COMMAND_END = re.compile(r";|&|\|| #|\)|`|$", re.M)
_SUBCOMMAND = re.compile(r"^[a-z][a-z_-]*$")  # anything else (`...`, `<command>`) is a placeholder


def command_tokens(code: str, start: int) -> list[str]:
    """The words of the command that continues at `start`, brackets of `[--opt X]` removed."""
    end = _COMMAND_END.search(code, start)
    text = code[start : end.start() if end else len(code)]
    try:
        words = shlex.split(text)
    except ValueError:  # an unbalanced quote in a placeholder
        words = text.split()
    return [w.strip("[]") for w in words if w.strip("[]")]


def _is_flag(word: str) -> bool:
    return word.startswith("--") or bool(re.match(r"^-[A-Za-z]", word))


def _options(parser: argparse.ArgumentParser) -> dict[str, argparse.Action]:
    return {flag: action for action in parser._actions for flag in action.option_strings}


def _subcommands(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    found: dict[str, argparse.ArgumentParser] = {}
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            found.update(action.choices)
    return found


def harness_problems(code: str, parser: argparse.ArgumentParser) -> list[str]:
    """What in `code` names a subcommand or flag of `python -m harness` that the parser lacks."""
    top, subcommands = _options(parser), _subcommands(parser)
    problems = []
    for match in _HARNESS.finditer(code):
        words = command_tokens(code, match.end())
        shown = f"{match.group(0)} {' '.join(words)}".strip()
        i = 0
        while i < len(words) and _is_flag(words[i]):  # options before the subcommand
            flag, has_value = words[i].split("=", 1)[0], "=" in words[i]
            if flag not in top:
                problems.append(f"`{shown}`: {match.group(0)} has no option {flag}")
            elif top[flag].nargs != 0 and not has_value:
                i += 1  # its value
            i += 1
        if i == len(words) or not _SUBCOMMAND.match(words[i]):
            continue
        name = words[i]
        if name not in subcommands:
            problems.append(f"`{shown}`: no subcommand {name!r} (have {', '.join(subcommands)})")
            continue
        options = _options(subcommands[name])
        for word in words[i + 1 :]:
            if _is_flag(word) and word.split("=", 1)[0] not in options:
                problems.append(f"`{shown}`: `{name}` has no option {word.split('=', 1)[0]}")
    return problems


class _Parsed(Exception):
    def __init__(self, parser: argparse.ArgumentParser) -> None:
        self.parser = parser


def bench_parser(script: str, monkeypatch: pytest.MonkeyPatch) -> argparse.ArgumentParser:
    """The parser `bench.<script>.main` builds, caught at its parse_args (nothing else runs)."""

    def caught(self: argparse.ArgumentParser, *args: object, **kwargs: object) -> None:
        raise _Parsed(self)

    module = importlib.import_module(f"bench.{script}")
    with monkeypatch.context() as patch:
        patch.setattr(argparse.ArgumentParser, "parse_args", caught)
        try:
            module.main([])
        except _Parsed as parsed:
            return parsed.parser
    raise AssertionError(f"bench.{script}.main() did not parse its arguments")


def bench_problems(code: str, parsers: dict[str, argparse.ArgumentParser | None]) -> list[str]:
    """What in `code` names a `python -m bench.<script>` that does not exist, or a flag it lacks."""
    problems = []
    for match in _BENCH.finditer(code):
        script = match.group(1)
        parser = parsers.get(script)
        if parser is None:
            problems.append(f"`{match.group(0)}`: no bench/{script}.py with a main()")
            continue
        options = _options(parser)
        for word in command_tokens(code, match.end()):
            if _is_flag(word) and word.split("=", 1)[0] not in options:
                problems.append(f"`{match.group(0)}`: no option {word.split('=', 1)[0]}")
    return problems


# --- The tests ---------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def makefile() -> str:
    return MAKEFILE.read_text(encoding="utf-8")


def _ids(paths: list[Path]) -> list[str]:
    return [str(p.relative_to(ROOT)) for p in paths]


def test_docs_exist() -> None:
    assert (ROOT / "README.md").is_file()
    assert {p.name for p in DOC_FILES} >= {"README.md", "manual.md", "results.md", "tuning.md"}


@pytest.mark.parametrize("doc", DOC_FILES, ids=_ids(DOC_FILES))
def test_make_targets_and_variables_exist(doc: Path, makefile: str) -> None:
    problems = [p for code in code_snippets(doc.read_text(encoding="utf-8")) for p in make_problems(code, makefile)]
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize("doc", DOC_FILES, ids=_ids(DOC_FILES))
def test_harness_subcommands_and_flags_exist(doc: Path) -> None:
    parser = build_parser()
    problems = [p for code in code_snippets(doc.read_text(encoding="utf-8")) for p in harness_problems(code, parser)]
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize("doc", DOC_FILES, ids=_ids(DOC_FILES))
def test_bench_scripts_and_flags_exist(doc: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    codes = code_snippets(doc.read_text(encoding="utf-8"))
    scripts = {m.group(1) for code in codes for m in _BENCH.finditer(code)}
    parsers: dict[str, argparse.ArgumentParser | None] = {}
    for script in scripts:
        parsers[script] = bench_parser(script, monkeypatch) if (ROOT / "bench" / f"{script}.py").is_file() else None
    problems = [p for code in codes for p in bench_problems(code, parsers)]
    assert not problems, "\n".join(problems)


def test_image_links_resolve() -> None:
    problems = []
    for doc in DOC_FILES:
        for target in re.findall(r"!\[[^\]]*\]\(([^)\s]+)", doc.read_text(encoding="utf-8")):
            if not (doc.parent / target).is_file():
                problems.append(f"{doc.relative_to(ROOT)}: image {target} does not exist")
    assert not problems, "\n".join(problems)


def heading_anchors(markdown: str) -> set[str]:
    """GitHub's anchors for the headings: lower case, punctuation dropped, spaces as hyphens."""
    headings = re.findall(r"^#{1,6}[ \t]+(.+?)[ \t]*#*$", _FENCE.sub("", markdown), re.M)
    return {re.sub(r"[^\w\- ]", "", h.lower()).replace(" ", "-") for h in headings}


def test_local_links_resolve() -> None:
    problems = []
    for doc in DOC_FILES:
        text = doc.read_text(encoding="utf-8")
        for target, anchor in re.findall(r"(?<!!)\[[^\]]*\]\(([^)\s#]*)(?:#([^)\s]*))?\)", text):
            if "://" in target:
                continue
            path = (doc.parent / target) if target else doc
            if not path.exists():
                problems.append(f"{doc.relative_to(ROOT)}: link {target} does not exist")
            elif anchor and path.suffix == ".md" and anchor not in heading_anchors(path.read_text(encoding="utf-8")):
                problems.append(f"{doc.relative_to(ROOT)}: no heading #{anchor} in {path.relative_to(ROOT)}")
    assert not problems, "\n".join(problems)


def test_manual_covers_every_make_target(makefile: str) -> None:
    codes = code_snippets((ROOT / "docs" / "manual.md").read_text(encoding="utf-8"))
    documented = {call.target for code in codes for call in make_calls(code)}
    missing = sorted(makefile_targets(makefile) - documented)
    assert not missing, f"docs/manual.md never shows `make {'`, `make '.join(missing)}`"


# --- The checks can fail -----------------------------------------------------------------------

SAMPLE_MAKEFILE = """\
NAME ?= x
.PHONY: listed
real: $(STAMP)
\t@echo $(STEPS) $(NAME) $(SET)
other real-2 : real
VENV := .venv
"""

SAMPLE_DOC = """\
Run `make real STEPS=3 NAME=a` or `make no-such-target`, then:

```sh
make other SET="gamma=0.9 x=1" BOGUS=1 [STEPS=n]
python -m harness --experiments DIR run catch_dense --steps 5 --no-such-flag 3
.venv/bin/python -m harness fly
dqn-harness --wrong list
```

| `make listed` | `make real-2 [STEPS=a\\|b]` |
"""


def test_extractors_find_what_is_missing() -> None:
    targets = makefile_targets(SAMPLE_MAKEFILE)
    assert targets == {"listed", "real", "other", "real-2"}
    codes = code_snippets(SAMPLE_DOC)
    calls = [call for code in codes for call in make_calls(code)]
    assert [(c.target, c.variables) for c in calls] == [
        ("other", ("SET", "BOGUS", "STEPS")),
        ("real", ("STEPS", "NAME")),
        ("no-such-target", ()),
        ("listed", ()),
        ("real-2", ("STEPS",)),
    ]
    problems = [p for code in codes for p in make_problems(code, SAMPLE_MAKEFILE)]
    assert len(problems) == 2, problems
    assert any("no target 'no-such-target'" in p for p in problems), problems
    assert any("no variable BOGUS" in p for p in problems), problems


def test_harness_checker_finds_unknown_flags_and_subcommands() -> None:
    parser = build_parser()
    problems = [p for code in code_snippets(SAMPLE_DOC) for p in harness_problems(code, parser)]
    assert any("`run` has no option --no-such-flag" in p for p in problems), problems
    assert any("no subcommand 'fly'" in p for p in problems), problems
    assert any("has no option --wrong" in p for p in problems), problems
    assert len(problems) == 3, problems
    ok = "`python -m harness --experiments ~/mine sweep a b --seeds 0,3 --workers 2 --backend ray --set x=1 -h`"
    assert harness_problems(code_snippets(ok)[0], parser) == []


def test_bench_checker_finds_unknown_scripts_and_flags(monkeypatch: pytest.MonkeyPatch) -> None:
    code = "python -m bench.speed --reps 3 --no-such-flag\npython -m bench.nothing --x\npython -m bench.sweep --json o"
    parsers = {"speed": bench_parser("speed", monkeypatch), "sweep": bench_parser("sweep", monkeypatch)}
    problems = bench_problems(code, parsers)
    assert len(problems) == 2, problems
    assert "no option --no-such-flag" in problems[0] and "no bench/nothing.py" in problems[1], problems
