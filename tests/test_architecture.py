"""The house rules of docs/ARCHITECTURE.md, checked on the source: imports run downward only, nothing imports
the command line, no private name crosses a file, no module or function outgrows its room."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("envsim", "pairing", "training", "benchmarks", "ess")

# layer of a module -> layers it may import (a module may always import its own layer's siblings)
ALLOWED = {
    "core": {"core"},  # camera, provenance, version, lock
    "scenes": {"core", "scenes"},
    "nav": {"core", "scenes", "nav"},
    "store": {"core", "store"},
    "render": {"core", "scenes", "render"},
    "job": {"core", "scenes", "nav", "store", "render", "job"},
    "pairing": {"core", "store", "pairing"},
    "training": {"core", "store", "pairing", "training"},
    "benchmarks": {"core", "scenes", "nav", "store", "render", "job", "pairing", "training", "benchmarks"},
    "ess": {"core", "scenes", "nav", "store", "render", "job", "pairing", "training", "benchmarks", "ess"},
}
MAX_MODULE_LINES = 700
MAX_FUNCTION_LINES = 80
LONG_FUNCTIONS = {
    # a numba kernel: one loop over the input with the hash table and the literal runs in registers; split, it
    # would call across njit boundaries on every byte
    ("envsim/store/lzf.py", "_compress_block"),
}


def layer(module: str) -> str | None:
    """The layer of a dotted module name (None outside the project). ``envsim`` itself, the package's face
    that re-exports names from every layer, counts as its top layer (job)."""
    parts = module.split(".")
    if parts[0] not in PACKAGES:
        return None
    if parts[0] == "envsim":
        if len(parts) == 1:
            return "job"
        return parts[1] if parts[1] in ("scenes", "nav", "store", "render", "job") else "core"
    return parts[0]


def modules() -> list[tuple[str, Path]]:
    out = []
    for pkg in PACKAGES:
        for path in sorted((ROOT / pkg).rglob("*.py")):
            rel = path.relative_to(ROOT).with_suffix("")
            name = ".".join(rel.parts[:-1] if rel.name == "__init__" else rel.parts)
            out.append((name, path))
    return out


def imports(path: Path, module: str) -> list[tuple[int, str, list[str]]]:
    """(line, imported module, imported names) of every import in a file, relative ones resolved."""
    out = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            out += [(node.lineno, a.name, []) for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                pkg = module.split(".")[: len(module.split(".")) - node.level + (path.name == "__init__.py")]
                base = ".".join([*pkg, base] if base else pkg)
            out.append((node.lineno, base, [a.name for a in node.names]))
    return out


def test_the_layout_exists():
    for folder in ("envsim/scenes", "envsim/nav", "envsim/render", "envsim/store", "envsim/job", "ess",
                   "benchmarks/evaluation", "benchmarks/perf"):
        assert (ROOT / folder / "__init__.py").is_file(), folder
    assert len(modules()) > 50


def test_imports_run_downward_and_nothing_imports_ess():
    bad = []
    for module, path in modules():
        own = layer(module)
        for line, target, names in imports(path, module):
            for t in (target, *(f"{target}.{n}" for n in names if (ROOT / target.replace(".", "/") / f"{n}.py").is_file())):
                other = layer(t)
                if other is None or other == own:
                    continue
                if other not in ALLOWED[own]:
                    bad.append(f"{path.relative_to(ROOT)}:{line} ({own}) imports {t} ({other})")
    assert not bad, "\n".join(bad)


def test_no_private_name_crosses_a_file():
    bad = []
    for module, path in modules():
        for line, target, names in imports(path, module):
            if layer(target) is None:
                continue
            bad += [f"{path.relative_to(ROOT)}:{line} imports {target}.{n}" for n in names if n.startswith("_") and not n.endswith("__")]
    assert not bad, "\n".join(bad)


@pytest.mark.parametrize("pkg", PACKAGES)
def test_rooms_stay_small(pkg):
    big, long_functions = [], []
    for path in sorted((ROOT / pkg).rglob("*.py")):
        text = path.read_text()
        rel = str(path.relative_to(ROOT))
        if text.count("\n") > MAX_MODULE_LINES:
            big.append(f"{rel}: {text.count(chr(10))} lines")
        for node in ast.walk(ast.parse(text)):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                n = node.end_lineno - node.lineno + 1
                if n > MAX_FUNCTION_LINES and (rel, node.name) not in LONG_FUNCTIONS:
                    long_functions.append(f"{rel}:{node.lineno} {node.name}: {n} lines")
    assert not big and not long_functions, "\n".join(big + long_functions)


def test_the_checker_sees_a_violation(tmp_path):
    """The import walk resolves relative imports and names, so a violation cannot hide behind them."""
    path = tmp_path / "x.py"
    path.write_text("from ..job import dataset\nfrom ess.args import UserError\nfrom envsim.store.shards import _x\n")
    found = imports(path, "envsim.store.x")
    assert (1, "envsim.job", ["dataset"]) in found and layer("envsim.job") not in ALLOWED["store"]
    assert layer("ess.args") == "ess" and "ess" not in ALLOWED["benchmarks"]
    assert (3, "envsim.store.shards", ["_x"]) in found
