"""The package layers, checked from the source: a lower layer never imports a higher one (lazy imports
inside functions count too), and no two modules import each other, directly or in a circle."""
import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# layer of each package; a module may import only from its own layer or lower ones. train and evaluation
# are siblings: neither imports the other.
LAYERS = {"gsm_synth": 0, "models": 1, "pipelines.common": 2, "pipelines.train": 3, "pipelines.evaluation": 3,
          "pipelines.study": 4, "pipelines": 5}
PACKAGES = ("gsm_synth", "models", "pipelines")


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def package_of(module: str) -> str:
    return max((p for p in LAYERS if module == p or module.startswith(p + ".")), key=len)


def imports(path: Path) -> set[str]:
    """Every project module that `path` imports, at the top or inside a function."""
    me = module_name(path)
    base = me if path.name == "__init__.py" else me.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                anchor = base.rsplit(".", node.level - 1)[0] if node.level > 1 else base
                target = f"{anchor}.{node.module}" if node.module else anchor
            else:
                target = node.module
            found.add(target)
            found |= {f"{target}.{a.name}" for a in node.names}  # `from pipelines.train import rl`
    modules = {module_name(p) for p in sources()}
    return {m for m in found if m in modules and m != me}


def sources() -> list[Path]:
    return [p for pkg in PACKAGES for p in (ROOT / pkg).rglob("*.py")]


def test_no_layer_imports_a_higher_one():
    bad = []
    for path in sources():
        me = module_name(path)
        for target in imports(path):
            mine, theirs = package_of(me), package_of(target)
            if mine != theirs and LAYERS[theirs] >= LAYERS[mine]:
                bad.append(f"{me} -> {target}")
    assert not bad, bad


def test_no_import_circles():
    graph = {module_name(p): imports(p) for p in sources()}
    # a package's __init__ importing its own modules is not a circle
    graph = {m: {t for t in ts if not m.startswith(t + ".") and not t.startswith(m + ".")} for m, ts in graph.items()}
    state, circles = {}, []

    def visit(m, stack):
        state[m] = "open"
        for t in graph.get(m, ()):
            if state.get(t) == "open":
                circles.append(" -> ".join(stack[stack.index(t):] + [t]))
            elif t not in state:
                visit(t, stack + [t])
        state[m] = "done"

    for m in graph:
        if m not in state:
            visit(m, [m])
    assert not circles, circles


def test_the_checker_sees_a_violation(tmp_path, monkeypatch):
    """The scan itself works: a lazy upward import inside a function is found."""
    fake = ROOT / "pipelines" / "common" / "mixture.py"
    text = fake.read_text() + "\n\ndef _probe():\n    from pipelines.study.load import load_study\n"
    monkeypatch.setattr(Path, "read_text", lambda self, *a, **k: text if self == fake else Path.read_bytes(self).decode())
    assert "pipelines.study.load" in imports(fake)


def test_no_source_file_is_over_500_lines():
    long = {str(p.relative_to(ROOT)): n for p in sources() if (n := len(p.read_text().splitlines())) > 500}
    assert not long, long
