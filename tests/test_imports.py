"""The dependency floors of DESIGN.md, checked on every module of the tree.

``matcher`` imports none of the others; ``index`` and ``trainers`` stand on ``matcher``
(``trainers`` may use ``index``); ``api`` may import everything; nothing imports upward,
and no module imports a private name (one starting with ``_``) of another package. The
check reads every ``import`` statement of every module with :mod:`ast` (those inside
functions too), so a lazy import cannot hide a floor crossing; the runtime check beside it
imports each package in a fresh interpreter and looks at what got loaded.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

#: package -> the project packages it may import (itself always allowed).
ALLOWED = {
    "matcher": set(),
    "index": {"matcher"},
    "trainers": {"matcher", "index"},
    "api": {"matcher", "index", "trainers"},
}


def _imports(path: Path) -> list[tuple[int, str, list[str]]]:
    """``(line, module, names)`` of every absolute import in ``path``."""
    out = []
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            out.extend((node.lineno, alias.name, []) for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            out.append((node.lineno, node.module, [alias.name for alias in node.names]))
    return out


def _modules(package: str) -> list[Path]:
    return sorted((ROOT / package).rglob("*.py"))


@pytest.mark.parametrize("package", sorted(ALLOWED))
def test_no_module_imports_upward(package):
    crossings = []
    for path in _modules(package):
        for line, module, _ in _imports(path):
            top = module.split(".")[0]
            if top in ALLOWED and top != package and top not in ALLOWED[package]:
                crossings.append(f"{path.relative_to(ROOT)}:{line} imports {module}")
    assert not crossings, "\n".join(crossings)


@pytest.mark.parametrize("package", sorted(ALLOWED))
def test_no_module_imports_a_private_name_of_another_package(package):
    private = []
    for path in _modules(package):
        for line, module, names in _imports(path):
            top = module.split(".")[0]
            if top not in ALLOWED or top == package:
                continue
            parts = module.split(".")[1:]
            hidden = [p for p in parts if p.startswith("_") and p != "__init__"]
            hidden += [n for n in names if n.startswith("_")]
            if hidden:
                private.append(f"{path.relative_to(ROOT)}:{line} {module}: {', '.join(hidden)}")
    assert not private, "\n".join(private)


def test_the_checker_sees_lazy_and_private_imports(tmp_path):
    """The static check is not blind: it finds an import inside a function and a private
    name in a ``from`` import."""
    probe = tmp_path / "probe.py"
    probe.write_text("def f():\n    from api.cli import _parser\n    import trainers.loop\n")
    found = _imports(probe)
    assert (2, "api.cli", ["_parser"]) in found
    assert (3, "trainers.loop", []) in found


@pytest.mark.parametrize(
    "package, forbidden",
    [
        ("matcher", ("api", "index", "trainers", "flask", "faiss")),
        ("index", ("api", "trainers", "flask")),
        ("trainers", ("api", "flask")),
    ],
)
def test_importing_a_floor_loads_nothing_above_it(package, forbidden):
    code = (
        f"import sys, {package}\n"
        f"bad = [m for m in {forbidden!r} if m in sys.modules]\n"
        "print(','.join(bad))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""


def test_the_command_line_starts_without_torch():
    """``siammatch --help`` answers at once: api.cli and its defaults import no torch."""
    code = "import sys, api.cli, api.defaults\nprint('torch' in sys.modules)\n"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
