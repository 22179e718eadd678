"""The house's layers hold: import-linter's contracts (pyproject.toml) and no import circle in ftlib.

grimp (import-linter's graph library) reads every import statement, those inside functions too.
"""
import ast
import subprocess
import sys
from pathlib import Path

import grimp
import pytest

ROOT = Path(__file__).resolve().parents[1]
LAYERS = ["course", "finetune", "serving", "studies", "products", "metrics", "engine", "cores", "data"]


def test_import_linter_contracts_are_kept():
    lint = Path(sys.executable).with_name("lint-imports")
    done = subprocess.run([str(lint), "--no-cache"], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-2000:]
    assert "0 broken" in done.stdout and "layers" in (ROOT / "pyproject.toml").read_text()


@pytest.fixture(scope="module")
def graph():
    return grimp.build_graph("ftlib", cache_dir=None)


def test_no_import_circle_among_ftlib_modules(graph):
    circles = []
    for module in sorted(graph.modules):
        for imported in graph.find_modules_directly_imported_by(module):
            chain = graph.find_shortest_chain(importer=imported, imported=module)
            if chain:
                circles.append(" -> ".join((module,) + chain))
    assert not circles, "import circles:\n" + "\n".join(circles[:10])


def test_no_module_imports_a_private_name_of_another():
    crossing = []
    for path in sorted((ROOT / "ftlib").rglob("*.py")) + sorted((ROOT / "tests").glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("ftlib"):
                private = [a.name for a in node.names if a.name.startswith("_") and not a.name.startswith("__")]
                if private:
                    crossing.append(f"{path.relative_to(ROOT)}:{node.lineno}: {node.module} {private}")
    assert not crossing, "\n".join(crossing)


def test_every_module_sits_in_a_layer_folder():
    top = sorted(p.name for p in (ROOT / "ftlib").iterdir() if p.suffix == ".py")
    assert top == ["__init__.py"], f"modules outside a layer folder: {top}"
    folders = sorted(p.name for p in (ROOT / "ftlib").iterdir() if p.is_dir() and p.name != "__pycache__")
    assert folders == sorted(LAYERS)


def test_the_readme_layout_names_every_module():
    readme = (ROOT / "README.md").read_text()
    layout = readme[readme.index("## Layout"):]
    layout = layout[:layout.index("\n## ", 4)]
    missing = [f"{p.parent.name}/{p.stem}" for p in sorted((ROOT / "ftlib").rglob("*.py"))
               if p.stem not in ("__init__", "__main__") and p.stem not in layout]
    assert not missing, f"README's Layout does not name: {missing}"
