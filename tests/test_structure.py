"""The shape of the code itself: no import cycle in archdsl/ (imports inside functions count
too; an `if __name__ == "__main__":` block runs as another module, __main__, and does not),
no function over 80 lines, no module over 600 lines, and the check path free of torch."""

import ast
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "archdsl"


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path: Path, modules: set[str]) -> set[str]:
    """The archdsl modules that `path` imports, anywhere in it."""
    name = _module_name(path)
    package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
    found = set()
    tree = ast.parse(path.read_text())
    as_main = {id(n) for top in tree.body if _is_main_guard(top) for n in ast.walk(top)}
    for node in ast.walk(tree):
        if id(node) in as_main:
            continue
        if isinstance(node, ast.ImportFrom):
            base = package.split(".")
            if node.level:
                base = base[:len(base) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            candidates = [target] + [f"{target}.{a.name}" for a in node.names]
        elif isinstance(node, ast.Import):
            candidates = [a.name for a in node.names]
        else:
            continue
        found |= {c for c in candidates if c in modules and c != name}
    return found


def _is_main_guard(node) -> bool:
    return isinstance(node, ast.If) and ast.unparse(node.test) in (
        "__name__ == '__main__'", "'__main__' == __name__")


def test_a_main_block_is_not_an_import_of_the_module(tmp_path, monkeypatch):
    monkeypatch.setattr(sys.modules[__name__], "ROOT", tmp_path)
    (tmp_path / "archdsl").mkdir()
    path = tmp_path / "archdsl" / "fmt.py"
    path.write_text("from .files import x\nif __name__ == '__main__':\n"
                    "    from archdsl.cli import main\n")
    assert _imports(path, {"archdsl.files", "archdsl.cli"}) == {"archdsl.files"}


def _graph():
    files = {_module_name(p): p for p in PACKAGE.rglob("*.py")}
    return {m: _imports(p, set(files)) for m, p in files.items()}


def _cycle(graph):
    """One import cycle as a list of modules, or None."""
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(m):
        state[m] = 1
        stack.append(m)
        for n in sorted(graph[m]):
            # a package's __init__ importing its own modules is how packages work
            if m == n.rsplit(".", 1)[0] and m != "archdsl":
                continue
            if state.get(n) == 1:
                return stack[stack.index(n):] + [n]
            if n not in state:
                found = visit(n)
                if found:
                    return found
        stack.pop()
        state[m] = 2
        return None

    for m in sorted(graph):
        if m not in state:
            found = visit(m)
            if found:
                return found
    return None


def test_the_import_graph_has_no_cycle():
    graph = _graph()
    graph["archdsl"] = set()  # the package's lazy re-exports, not a stage
    assert _cycle(graph) is None, " -> ".join(_cycle(graph))


def test_the_cycle_finder_finds_a_cycle():
    assert _cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]


def test_no_function_over_80_lines_and_no_module_over_600():
    long = []
    for path in sorted(PACKAGE.rglob("*.py")):
        text = path.read_text()
        rel = path.relative_to(ROOT)
        if len(text.splitlines()) > 600:
            long.append(f"{rel}: {len(text.splitlines())} lines")
        for node in ast.walk(ast.parse(text)):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                size = node.end_lineno - node.lineno + 1
                if size > 80:
                    long.append(f"{rel}:{node.lineno} {node.name}: {size} lines")
    assert long == []


def test_checking_a_spec_imports_no_torch():
    code = ("import sys, archdsl; archdsl.load('specs/resnet50.arch').summary(); "
            "archdsl.analyse(open('specs/googlenet.arch').read()); "
            "print(sorted(m for m in sys.modules if m.split('.')[0] in ('torch', 'torchvision')))")
    run = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
    assert run.stdout.strip() == "[]"


# Stages ask a kind's traits, never its name (issue 21): only the layer kinds themselves, in
# archdsl/layers/, may compare a kind's name.


def _kind_words() -> set[str]:
    """Every registered kind's name and every family's: what a branch on a name compares with."""
    from archdsl.layers import REGISTRY

    return set(REGISTRY) | {kind.family for kind in REGISTRY.values()}


def _names_a_kind(node) -> bool:
    """`x.op`, `x.family`, or the `.name` of a kind (`kind.name`, `node.kind.name`)."""
    if not isinstance(node, ast.Attribute):
        return False
    if node.attr in ("op", "family"):
        return True
    owner = node.value
    return node.attr == "name" and (isinstance(owner, ast.Name) and owner.id == "kind" or
                                    isinstance(owner, ast.Attribute) and owner.attr == "kind")


def _literals(node) -> list[str]:
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return [node.value]
    if isinstance(node, (ast.Tuple, ast.List, ast.Set)):
        return [s for e in node.elts for s in _literals(e)]
    return []


def name_branches(text: str, words: set[str]) -> list[tuple[int, str]]:
    """(line, source) of each comparison of a kind's op, family or name with a string literal
    that names a kind or a family (`node.op == "linear"`, `kind.family in ("norm", …)`)."""
    found = []
    for node in ast.walk(ast.parse(text)):
        if not isinstance(node, ast.Compare):
            continue
        sides = [node.left, *node.comparators]
        for op, a, b in zip(node.ops, sides, sides[1:]):
            if not isinstance(op, (ast.Eq, ast.NotEq, ast.In, ast.NotIn)):
                continue
            if any(_names_a_kind(x) and words.intersection(_literals(y))
                   for x, y in ((a, b), (b, a))):
                found.append((node.lineno, ast.unparse(node)))
    return sorted(found)


def test_the_name_branch_finder_finds_branches_on_names():
    words = {"linear", "norm", "softmax"}
    text = ('if graph.layer(p).op == "linear": pass\nif kind.family in ("norm", "x"): pass\n'
            'if "softmax" != node.kind.name: pass\n'
            'if e.op == "+": pass\nif arg.name == "linear": pass\nif node.op in blocks: pass\n')
    assert [line for line, _ in name_branches(text, words)] == [1, 2, 3]


def test_no_stage_branches_on_a_kind_name():
    """Outside the registry (archdsl/layers/), code asks a kind's traits instead."""
    words = _kind_words()
    found = []
    for path in sorted(PACKAGE.rglob("*.py")):
        rel = path.relative_to(PACKAGE)
        if rel.parts[0] == "layers":
            continue
        found += [f"archdsl/{rel}:{line}: {source}"
                  for line, source in name_branches(path.read_text(), words)]
    assert found == []
