"""grounded's module graph: import cycles, modules over 700 lines, functions over 12 parameters.

    .venv/bin/python benchmarks/module_graph.py [--json]

Reads the source (never imports it): every `import` and `from ... import` of a grounded module,
at module level or inside a function (a local import still closes a cycle when it runs), except
those under `if TYPE_CHECKING:`. `grounded.loaders`, `grounded.eval` and `grounded.prompts` are
mapped from the top-level folders as pyproject.toml maps them. Prints the cycles (strongly
connected components of more than one module), the modules over --max-lines lines and the
functions with more than --max-params parameters (self/cls not counted; the CLI's modules are
exempt: a click command takes one parameter per flag). tests/test_architecture.py holds the tree to
the same limits.
"""

from __future__ import annotations

import argparse
import ast
import json
from dataclasses import dataclass, field
from pathlib import Path

import networkx as nx

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = {
    "grounded": "grounded",
    "grounded.loaders": "loaders",
    "grounded.eval": "eval",
    "grounded.prompts": "prompts",
}
MAX_LINES = 700
MAX_PARAMS = 12
# The CLI edge: click commands take one parameter per flag, by design (STYLE.md habit 8).
CLI_MODULES = ("grounded.cli", "grounded.commands")


@dataclass
class Graph:
    modules: dict[str, Path] = field(default_factory=dict)
    edges: set[tuple[str, str]] = field(default_factory=set)
    lines: dict[str, int] = field(default_factory=dict)
    params: list[tuple[str, str, int]] = field(default_factory=list)  # module, function, count

    def cycles(self) -> list[list[str]]:
        graph = nx.DiGraph(list(self.edges))
        graph.add_nodes_from(self.modules)
        return sorted(sorted(c) for c in nx.strongly_connected_components(graph) if len(c) > 1)

    def long_modules(self, limit: int = MAX_LINES) -> list[tuple[str, int]]:
        return sorted(((m, n) for m, n in self.lines.items() if n > limit), key=lambda x: -x[1])

    def wide_functions(self, limit: int = MAX_PARAMS) -> list[tuple[str, str, int]]:
        return sorted(
            (p for p in self.params if p[2] > limit and not _is_cli(p[0])), key=lambda x: -x[2]
        )


def _is_cli(module: str) -> bool:
    return any(module == m or module.startswith(m + ".") for m in CLI_MODULES)


def _module_files(root: Path) -> dict[str, Path]:
    found: dict[str, Path] = {}
    for package, folder in PACKAGES.items():
        base = root / folder
        for path in sorted(base.rglob("*.py")):
            rel = path.relative_to(base).with_suffix("")
            parts = [p for p in rel.parts if p != "__init__"]
            # grounded/ holds only grounded's own modules; the mapped folders are separate packages
            if package == "grounded" and parts and f"grounded.{parts[0]}" in PACKAGES:
                continue
            found[".".join([package, *parts])] = path
    return found


def _type_checking_lines(tree: ast.AST) -> set[int]:
    skip: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            for child in node.body:
                for sub in ast.walk(child):
                    if hasattr(sub, "lineno"):
                        skip.add(sub.lineno)
    return skip


def _resolve(name: str, modules: dict[str, Path]) -> str | None:
    """The grounded module an import of `name` runs: the longest known prefix."""
    while name:
        if name in modules:
            return name
        name = name.rpartition(".")[0]
    return None


def build(root: Path = ROOT) -> Graph:
    graph = Graph(modules=_module_files(root))
    for module, path in graph.modules.items():
        source = path.read_text(encoding="utf-8")
        graph.lines[module] = len(source.splitlines())
        tree = ast.parse(source)
        skip = _type_checking_lines(tree)
        is_package = path.name == "__init__.py"
        for node in ast.walk(tree):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                args = node.args
                names = [a.arg for a in (*args.posonlyargs, *args.args, *args.kwonlyargs)]
                count = len(names) - (1 if names and names[0] in ("self", "cls") else 0)
                count += bool(args.vararg) + bool(args.kwarg)
                graph.params.append((module, node.name, count))
            if getattr(node, "lineno", None) in skip:
                continue
            targets: list[str] = []
            if isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                if node.level:
                    base = module if is_package else module.rpartition(".")[0]
                    for _ in range(node.level - 1):
                        base = base.rpartition(".")[0]
                    prefix = f"{base}.{node.module}" if node.module else base
                else:
                    prefix = node.module or ""
                # `from grounded import offline` imports the module grounded.offline
                targets = [
                    f"{prefix}.{a.name}" if f"{prefix}.{a.name}" in graph.modules else prefix
                    for a in node.names
                ]
            for target in targets:
                resolved = _resolve(target, graph.modules)
                if resolved and resolved != module:
                    graph.edges.add((module, resolved))
    return graph


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--max-lines", type=int, default=MAX_LINES)
    parser.add_argument("--max-params", type=int, default=MAX_PARAMS)
    args = parser.parse_args()
    graph = build()
    figures = {
        "modules": len(graph.modules),
        "import_edges": len(graph.edges),
        "cycles": graph.cycles(),
        "modules_over_limit": graph.long_modules(args.max_lines),
        "functions_over_limit": graph.wide_functions(args.max_params),
    }
    if args.json:
        print(json.dumps(figures, indent=2))
        return
    print(f"{figures['modules']} modules, {figures['import_edges']} import edges")
    print(f"cycles ({len(figures['cycles'])}):")
    for cycle in figures["cycles"]:
        print("  " + " <-> ".join(cycle))
    print(f"modules over {args.max_lines} lines ({len(figures['modules_over_limit'])}):")
    for module, lines in figures["modules_over_limit"]:
        print(f"  {module}: {lines}")
    print(
        f"functions over {args.max_params} parameters outside the CLI "
        f"({len(figures['functions_over_limit'])}):"
    )
    for module, function, count in figures["functions_over_limit"]:
        print(f"  {module}.{function}: {count}")


if __name__ == "__main__":
    main()
