"""The core's layers point one way: the store knows nothing of drivers or config, the driver
SDK nothing of config or the running service, config nothing of what runs it, and nothing below
the service imports the service or the CLI. Runtime imports only: names imported for type
annotations under ``if TYPE_CHECKING:`` do not make a cycle at import time."""

import ast
from pathlib import Path

from tests.source import parse_file

ROOT = Path(__file__).resolve().parents[2]

#: lowest first; a module may import its own layer and the ones before it. Modules not
#: named here are the running parts (devices, hub, actuation, rules, coap) below "top".
LAYERS: list[tuple[str, tuple[str, ...]]] = [
    (
        "base",
        (
            "gateway.model",
            "gateway.options",
            "gateway.problems",
            "gateway.units",
            "gateway.entrypoints",
            "gateway.clock",
            "gateway.atomicfile",
            "gateway.plain",
            "gateway.logfmt",
            "gateway.lazyimport",
        ),
    ),
    ("store", ("gateway.store",)),
    ("driver sdk", ("gateway.driver", "gateway.resources", "gateway.wiring")),
    ("config", ("gateway.config", "gateway.actuators", "gateway.components")),
    ("running parts", ()),
    (
        "top",
        ("gateway.service", "gateway.cli", "gateway.demo", "gateway.__main__", "gateway.coap.api_demo"),
    ),  # the demo's API peer
]
RUNNING = 4


def layer_of(module: str) -> int:
    for index, (_name, prefixes) in enumerate(LAYERS):
        if any(module == p or module.startswith(p + ".") for p in prefixes):
            return index
    return RUNNING


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def runtime_imports(path: Path, module: str) -> set[str]:
    """Gateway modules that ``path`` (the source of ``module``) imports when it runs;
    ``from x import y`` counts as x and x.y."""
    package = module if path.name == "__init__.py" else module.rsplit(".", 1)[0]
    found: set[str] = set()

    def visit(node: ast.AST) -> None:
        for child in ast.iter_child_nodes(node):
            if (
                isinstance(child, ast.If)
                and isinstance(child.test, ast.Name)
                and child.test.id == "TYPE_CHECKING"
            ):
                continue
            if isinstance(child, ast.Import):
                found.update(alias.name for alias in child.names)
            elif isinstance(child, ast.ImportFrom):
                if child.level:
                    base = package.split(".")[: len(package.split(".")) - (child.level - 1)]
                    target = ".".join(base + ([child.module] if child.module else []))
                else:
                    target = child.module or ""
                found.add(target)
                found.update(f"{target}.{alias.name}" for alias in child.names)
            visit(child)

    visit(parse_file(path))
    return {name for name in found if name == "gateway" or name.startswith("gateway.")}


def is_module(name: str) -> bool:
    path = ROOT / Path(*name.split("."))
    return path.with_suffix(".py").exists() or (path / "__init__.py").exists()


def test_no_module_imports_a_layer_above_its_own():
    upward = []
    for path in sorted((ROOT / "gateway").rglob("*.py")):
        module = module_name(path)
        own = layer_of(module)
        for imported in sorted(runtime_imports(path, module)):
            if imported == "gateway" or not is_module(imported):
                continue  # the package itself (its __version__), or a name inside a module
            if layer_of(imported) > own:
                upward.append(
                    f"{module} ({LAYERS[own][0]}) imports {imported} ({LAYERS[layer_of(imported)][0]})"
                )
    assert upward == []


def test_the_check_sees_an_upward_import_but_not_one_for_annotations(tmp_path):
    """The test above can fail: a store module importing the config is caught."""
    probe = tmp_path / "probe.py"
    probe.write_text(
        "from typing import TYPE_CHECKING\nfrom ..config import load_config\n"
        "if TYPE_CHECKING:\n    from ..service import Service\n"
    )
    imports = runtime_imports(probe, "gateway.store.probe")
    assert "gateway.config" in imports and "gateway.service" not in imports
    assert layer_of("gateway.store.probe") < layer_of("gateway.config")
