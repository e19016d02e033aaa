"""The layers a newcomer sees from the tree, checked on the imports themselves: the course model imports nothing
of the project, lab_scripts only the course model, infra and stacks nothing of labkit, and no package cycle."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("course", "lab_scripts", "infra", "stacks", "labkit")
# What each layer may import from the project, besides itself.
ALLOWED = {
    "course": set(),
    "lab_scripts": {"course"},
    "infra": {"course", "lab_scripts"},
    "stacks": {"course", "lab_scripts", "infra"},
    "labkit": {"course", "lab_scripts"},
}
# Third-party modules the pure course model must not import: it makes no AWS or CDK call.
IMPURE = ("boto3", "botocore", "aws_cdk", "constructs", "cdk_nag", "rich", "moto")


def imports(path: Path) -> set[str]:
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
    return found


def package_imports(package: str) -> dict[Path, set[str]]:
    return {path: imports(path) for path in sorted((ROOT / package).rglob("*.py"))}


@pytest.mark.parametrize("package", PACKAGES)
def test_each_layer_imports_only_the_layers_below(package: str) -> None:
    wrong = {f"{path.relative_to(ROOT)}: {name}" for path, names in package_imports(package).items()
             for name in names if name.split(".")[0] in set(PACKAGES) - ALLOWED[package] - {package}}
    assert not wrong, sorted(wrong)


def test_the_course_model_is_pure() -> None:
    wrong = {f"{path.relative_to(ROOT)}: {name}" for path, names in package_imports("course").items()
             for name in names if name.split(".")[0] in IMPURE}
    assert not wrong, sorted(wrong)


def test_no_import_cycle_between_modules() -> None:
    graph: dict[str, set[str]] = {}
    for package in PACKAGES:
        for path, names in package_imports(package).items():
            module = ".".join(path.relative_to(ROOT).with_suffix("").parts).removesuffix(".__init__")
            graph[module] = {name for name in names if name.split(".")[0] in PACKAGES}
    # Edges to a package mean its __init__; `from labkit import ROOT` is such an edge.
    def resolve(name: str) -> str | None:
        while name and name not in graph:
            name = name.rpartition(".")[0]
        return name or None

    edges = {module: {target for target in map(resolve, names) if target and target != module}
             for module, names in graph.items()}
    visiting: list[str] = []
    done: set[str] = set()

    def visit(module: str) -> None:
        if module in done:
            return
        assert module not in visiting, " -> ".join(visiting[visiting.index(module):] + [module])
        visiting.append(module)
        for target in sorted(edges[module]):
            visit(target)
        visiting.pop()
        done.add(module)

    for module in sorted(edges):
        visit(module)
