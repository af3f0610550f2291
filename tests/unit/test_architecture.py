"""The dependency rules of the layout, checked on the source.

common/ is a leaf; the service stack (a peer under test), the SSH CA and the suites (the
judge) depend on nothing but it; the harness may use the leaf and the suites'
target and report, never the stack. Imports use the installed names only.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from tests.repository import ROOT

PACKAGES = ("common", "harness", "scenarios", "sshca", "stack")
PREFIX = "firecrest_testbuild"
ALLOWED = {
    "common": {"common"},
    "stack": {"stack", "common"},
    "sshca": {"sshca", "common"},
    "scenarios": {"scenarios", "common"},
    "harness": {"harness", "common", "scenarios"},
}


def imported_modules(path: Path) -> list[tuple[int, str]]:
    """Every absolute module name a file imports (at any depth), with its line."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.append((node.lineno, node.module))
        elif isinstance(node, ast.ImportFrom) and node.level:
            found.append((node.lineno, "." * node.level + (node.module or "")))
    return found


def sources(package: str) -> list[Path]:
    return sorted(p for p in (ROOT / package).rglob("*.py") if "__pycache__" not in p.parts)


def package_of(module: str) -> str | None:
    """The part of the testbuild a module name belongs to, if any."""
    parts = module.split(".")
    if parts[0] == PREFIX and len(parts) > 1 and parts[1] in PACKAGES:
        return parts[1]
    return None


@pytest.mark.parametrize("package", PACKAGES)
def test_a_package_imports_only_what_the_layout_allows(package: str):
    wrong = [
        f"{path.relative_to(ROOT)}:{line} imports {module}"
        for path in sources(package)
        for line, module in imported_modules(path)
        if (used := package_of(module)) is not None and used not in ALLOWED[package]
    ]
    assert not wrong, f"{package}/ may import only {sorted(ALLOWED[package])}:\n" + "\n".join(wrong)


@pytest.mark.parametrize("package", PACKAGES)
def test_imports_use_installed_names_not_folder_names(package: str):
    bare = [
        f"{path.relative_to(ROOT)}:{line} imports {module}"
        for path in sources(package)
        for line, module in imported_modules(path)
        if module.startswith(".") or module.split(".")[0] in PACKAGES
    ]
    assert not bare, "import firecrest_testbuild.<part>..., not the folder name:\n" + "\n".join(
        bare
    )


def test_the_rules_catch_a_wrong_import(tmp_path: Path):
    stray = tmp_path / "stray.py"
    stray.write_text(
        "def f():\n    from firecrest_testbuild.stack.app import create_app\n    import harness\n"
    )
    modules = [module for _, module in imported_modules(stray)]
    assert modules == ["firecrest_testbuild.stack.app", "harness"]
    assert package_of(modules[0]) == "stack"
    assert package_of("firecrest_testbuild.stackish") is None


def test_the_installed_package_links_every_part():
    linked = ROOT / PREFIX
    for part in (*PACKAGES, "images", "cluster"):
        assert (linked / part).resolve() == (ROOT / part).resolve(), f"{PREFIX}/{part} link"
