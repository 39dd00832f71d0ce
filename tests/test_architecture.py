"""The package's shape, checked from the source (issue 12): imports go one way, only
``session.py`` changes a session's state, the adapters, the CLI and the demo use the
core's public names only, and units stay small. Every check reads the AST, so it
covers ``TYPE_CHECKING`` blocks and imports inside functions too."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from wsgisession.session import Session

PACKAGE = Path(__file__).resolve().parents[1] / "wsgisession"
MODULES = {
    ".".join(path.relative_to(PACKAGE.parent).with_suffix("").parts).removesuffix(".__init__"): path
    for path in sorted(PACKAGE.rglob("*.py"))
}
TREES = {name: ast.parse(path.read_text(encoding="utf-8")) for name, path in MODULES.items()}
#: Modules that stand outside the core and may use only its public names.
CLIENTS = {name for name in MODULES if name.startswith("wsgisession.adapters")} | {
    "wsgisession.demo",
    "wsgisession.__main__",
}


def _resolve(module: str, node: ast.ImportFrom) -> str:
    if node.level == 0:
        return node.module or ""
    package = module if MODULES[module].name == "__init__.py" else module.rpartition(".")[0]
    for _ in range(node.level - 1):
        package = package.rpartition(".")[0]
    return f"{package}.{node.module}" if node.module else package


def imports(module: str) -> list[tuple[str, list[str]]]:
    """Every import in ``module``: (imported module, names imported from it)."""
    out = []
    for node in ast.walk(TREES[module]):
        if isinstance(node, ast.Import):
            out += [(alias.name, []) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            target = _resolve(module, node)
            names = [alias.name for alias in node.names]
            # ``from . import x`` may import the submodule x.
            subs = [f"{target}.{n}" for n in names if f"{target}.{n}" in MODULES]
            out.append((target, [n for n in names if f"{target}.{n}" not in MODULES]))
            out += [(sub, []) for sub in subs]
    return out


def internal_graph() -> dict[str, set[str]]:
    graph: dict[str, set[str]] = {name: set() for name in MODULES}
    for module in MODULES:
        for target, _ in imports(module):
            if target in MODULES and target != module:
                graph[module].add(target)
    return graph


def test_the_import_graph_has_no_cycle():
    graph = internal_graph()
    state: dict[str, int] = {}

    def visit(node: str, path: list[str]) -> None:
        state[node] = 1
        for target in sorted(graph[node]):
            if state.get(target) == 1:
                cycle = [*path[path.index(target) :], target] if target in path else [node, target]
                pytest.fail("import cycle: " + " -> ".join(cycle))
            if target not in state:
                visit(target, [*path, target])
        state[node] = 2

    for module in sorted(graph):
        if module not in state:
            visit(module, [module])


def test_the_core_never_imports_an_adapter_the_demo_or_the_cli():
    for module, targets in internal_graph().items():
        if module in CLIENTS or module == "wsgisession":
            continue
        assert not targets & CLIENTS, (module, targets & CLIENTS)


def test_the_import_graph_checker_sees_every_kind_of_import():
    """session.py's TYPE_CHECKING import of owner, and the function-level imports of
    the CLI, are part of the graph (they are what a cycle would hide in)."""
    graph = internal_graph()
    assert "wsgisession.owner" in graph["wsgisession.session"]
    assert "wsgisession.demo" in graph["wsgisession.__main__"]


def _session_fields() -> set[str]:
    names = set(vars(Session)) | set(Session.__annotations__)
    return {n for n in names if n.startswith("_") and not n.startswith("__")}


def _assigned_attributes(tree: ast.AST):
    """(function, attribute, object expression) for every attribute store and
    ``setattr(obj, "name", ...)``."""
    functions: list[str] = []

    class Visitor(ast.NodeVisitor):
        def visit_FunctionDef(self, node: ast.FunctionDef) -> None:
            functions.append(node.name)
            self.generic_visit(node)
            functions.pop()

        visit_AsyncFunctionDef = visit_FunctionDef  # type: ignore[assignment]

        def visit_Attribute(self, node: ast.Attribute) -> None:
            if isinstance(node.ctx, ast.Store | ast.Del):
                found.append((functions[-1] if functions else "", node.attr, node.value))
            self.generic_visit(node)

        def visit_Call(self, node: ast.Call) -> None:
            if (
                isinstance(node.func, ast.Name)
                and node.func.id in ("setattr", "delattr")
                and len(node.args) >= 2
                and isinstance(node.args[1], ast.Constant)
            ):
                found.append((functions[-1] if functions else "", node.args[1].value, node.args[0]))
            self.generic_visit(node)

    found: list[tuple[str, str, ast.expr]] = []
    Visitor().visit(tree)
    return found


def test_only_session_py_changes_a_sessions_underscore_fields():
    """Outside session.py, no code assigns a Session field — but for the per-request
    binding in SessionMiddleware.__call__, exactly the fields of Session._PER_REQUEST."""
    fields = _session_fields()
    per_request = set(Session._PER_REQUEST)
    offences = []
    seen_binding = set()
    for module, tree in TREES.items():
        if module == "wsgisession.session":
            continue
        for function, attr, target in _assigned_attributes(tree):
            is_self = isinstance(target, ast.Name) and target.id in ("self", "cls")
            if is_self or attr not in fields | per_request:
                continue
            if module == "wsgisession.middleware" and function == "__call__":
                if attr in per_request:
                    seen_binding.add(attr)
                    continue
            offences.append(f"{module}:{function}: .{attr}")
    assert offences == []
    assert {"_owner", "_environ", "_data", "_server_start_response"} <= seen_binding


def _core_private_names() -> set[str]:
    """Underscore names the core defines on its objects (methods, class attributes,
    fields assigned through self)."""
    names = set()
    for module, tree in TREES.items():
        if module in CLIENTS:
            continue
        for node in ast.walk(tree):
            if isinstance(node, ast.ClassDef):
                for item in node.body:
                    if isinstance(item, ast.FunctionDef | ast.AsyncFunctionDef):
                        names.add(item.name)
                    elif isinstance(item, ast.Assign | ast.AnnAssign):
                        targets = item.targets if isinstance(item, ast.Assign) else [item.target]
                        names |= {t.id for t in targets if isinstance(t, ast.Name)}
            if isinstance(node, ast.Attribute) and isinstance(node.ctx, ast.Store):
                if isinstance(node.value, ast.Name) and node.value.id == "self":
                    names.add(node.attr)
    return {n for n in names if n.startswith("_") and not n.startswith("__")}


def _own_names(tree: ast.AST) -> set[str]:
    """Underscore names a client module defines itself (its own classes' fields)."""
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            names.add(node.name)
        elif isinstance(node, ast.Attribute) and isinstance(node.ctx, ast.Store):
            names.add(node.attr)
        elif isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
            names.add(node.id)
    return names


@pytest.mark.parametrize("module", sorted(CLIENTS))
def test_adapters_cli_and_demo_use_public_names_of_the_core(module):
    core_private = _core_private_names()
    own = _own_names(TREES[module])
    offences = []
    for target, names in imports(module):
        if not target.startswith("wsgisession") or target.startswith("wsgisession.adapters"):
            continue
        if any(part.startswith("_") and part != "__main__" for part in target.split(".")):
            offences.append(f"imports the private module {target}")
        offences += [
            f"imports {target}.{n}"
            for n in names
            if n.startswith("_") and not (n.startswith("__") and n.endswith("__"))
        ]
    for node in ast.walk(TREES[module]):
        if isinstance(node, ast.Attribute) and node.attr in core_private - own:
            offences.append(f"uses .{node.attr} (line {node.lineno})")
    assert offences == []


def test_the_public_name_check_would_catch_a_private_use():
    """The names the old adapters reached for are among the core's private ones."""
    assert {"_environ", "_load", "_backend", "_adopt", "_reader"} <= _core_private_names()


@pytest.mark.parametrize("module", sorted(MODULES))
def test_modules_stay_under_500_lines_and_classes_under_450(module):
    path = MODULES[module]
    lines = path.read_text(encoding="utf-8").count("\n")
    assert lines <= 500, f"{path.name}: {lines} lines"
    for node in ast.walk(TREES[module]):
        if isinstance(node, ast.ClassDef):
            length = (node.end_lineno or node.lineno) - node.lineno + 1
            assert length <= 450, f"{path.name}: class {node.name} has {length} lines"
