"""The layout's promises: dependencies run one way, each step of the loop imports only the steps before it, no
two modules share a name, and the client runtime imports without the service's packages."""

from __future__ import annotations

import ast
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest

from tests.support import REPO

COMPONENTS = ("service", "client_runtime", "airflow_plugins")
# Which packages of service/ each may import, besides db, errors and schemas (shared by all): ingest writes
# the history, routing reads it, the API calls them all.
SERVICE_PACKAGES = {
    "ingest": {"history"},
    "history": set(),
    "routing": {"history"},
    "api": {"ingest", "history", "routing", "ops"},
    "ops": {"history", "routing"},
    "db": set(),
}


def modules(component: str) -> list[Path]:
    return [path for path in sorted((REPO / component).rglob("*.py"))
            if "migrations" not in path.parts and "__pycache__" not in path.parts]


def imported(path: Path) -> set[str]:
    """Every module a file imports, at the top or inside a function."""
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module)
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
    return names


def components_imported(path: Path) -> set[str]:
    return {name.split(".")[0] for name in imported(path)} & set(COMPONENTS)


@pytest.mark.parametrize("component, allowed", [
    ("client_runtime", {"client_runtime"}),
    ("airflow_plugins", {"airflow_plugins", "client_runtime"}),
    ("service", {"service", "client_runtime"}),
])
def test_dependencies_run_one_way(component, allowed):
    wrong = {str(path.relative_to(REPO)): sorted(components_imported(path) - allowed)
             for path in modules(component) if components_imported(path) - allowed}
    assert not wrong, f"{component} may import only {sorted(allowed)}: {wrong}"


def test_packages_of_the_service_import_along_the_data_path():
    wrong = []
    for package, allowed in SERVICE_PACKAGES.items():
        forbidden = {f"service.{name}" for name in SERVICE_PACKAGES if name not in allowed | {package, "db"}}
        forbidden |= {"service.app", "service.commands"}
        for path in modules(f"service/{package}"):
            for name in imported(path):
                if any(name == module or name.startswith(module + ".") for module in forbidden):
                    wrong.append(f"{path.relative_to(REPO)} imports {name}")
    assert not wrong, wrong


def test_no_two_modules_share_a_name():
    names = Counter(path.stem for component in COMPONENTS for path in modules(component)
                    if path.stem != "__init__")
    packages = Counter(path.parent.name for component in COMPONENTS for path in modules(component)
                       if path.stem == "__init__" and path.parent.name not in COMPONENTS)
    shared = [name for name, count in (names + packages).items() if count > 1]
    assert not shared, f"modules or packages sharing a name: {shared}"


def import_cycles(component: str) -> list[list[str]]:
    """Circles of imports between a component's modules (at the top or inside a function)."""
    graph = {}
    for path in modules(component):
        module = ".".join(path.relative_to(REPO).with_suffix("").parts).removesuffix(".__init__")
        graph[module] = imported(path)
    graph = {module: {name for name in names if name in graph and name != module} for module,
             names in graph.items()}
    cycles, done = [], set()

    def visit(module: str, path: list[str]) -> None:
        if module in path:
            cycles.append(path[path.index(module):] + [module])
            return
        if module in done:
            return
        for name in sorted(graph[module]):
            visit(name, [*path, module])
        done.add(module)

    for module in sorted(graph):
        visit(module, [])
    return cycles


@pytest.mark.parametrize("component", ["client_runtime", "service"])
def test_no_import_circles(component):
    """A module that imports another is not imported by it, however indirectly: each can be read (and loaded)
    knowing only what it imports."""
    assert import_cycles(component) == []


def test_an_import_circle_is_found(tmp_path, monkeypatch):
    """The check above can fail: two modules that import each other are a circle."""
    package = tmp_path / "pkg"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "one.py").write_text("from pkg.two import B\n")
    (package / "two.py").write_text("def f():\n    from pkg import one\n")
    monkeypatch.setattr(sys.modules[__name__], "REPO", tmp_path)
    assert import_cycles("pkg") == [["pkg.one", "pkg.two", "pkg.one"]]


def test_client_runtime_imports_without_the_service_and_its_packages():
    """What the thin client image has: the client runtime and its own dependencies. Every module of it is
    imported with the service, Airflow and the service's packages made unimportable."""
    blocked = ("service", "airflow_plugins", "airflow", "fastapi", "sqlalchemy", "alembic", "uvicorn",
               "psycopg", "prometheus_client")
    names = [f"client_runtime.{path.stem}" for path in modules("client_runtime") if path.stem != "__init__"]
    code = (
        "import importlib, importlib.abc, sys\n"
        f"BLOCKED = {blocked!r}\n"
        "class Block(importlib.abc.MetaPathFinder):\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        "        if name.split('.')[0] in BLOCKED:\n"
        "            raise ImportError(f'{name} is not in the client image')\n"
        "sys.meta_path.insert(0, Block())\n"
        f"for name in {names!r}:\n"
        "    importlib.import_module(name)\n"
        "print('imported', len(sys.modules))\n")
    result = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True,
                            timeout=120, check=False)
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.startswith("imported")
