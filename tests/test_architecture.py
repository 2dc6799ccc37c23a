"""The layers of docs/architecture.md are the imports of the code: every import points downward (issue 12),
and importing osteomri selects no matplotlib backend."""

from __future__ import annotations

import ast
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
LEAVES = {"errors", "_version", "__init__"}
FACADES = {"waterfat": "models", "ivim": "models"}  # osteomri/waterfat.py, osteomri/ivim.py: the public API


def _layers() -> list[str]:
    """Layer names in the order docs/architecture.md draws them (top first)."""
    text = (ROOT / "docs" / "architecture.md").read_text()
    block = text.split("```")[1]
    return [m.group(1) for m in re.finditer(r"^(\w+)/", block, flags=re.M)]


def _runtime_imports(path: Path) -> set[str]:
    """The osteomri sub-packages ``path`` imports at run time (not under ``if TYPE_CHECKING``)."""
    tree = ast.parse(path.read_text())
    hidden = {id(n) for node in ast.walk(tree) if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test)
              for n in ast.walk(node)}
    names: set[str] = set()
    for node in ast.walk(tree):
        if id(node) in hidden:
            continue
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("osteomri."):
            names.add(node.module.split(".")[1])
        elif isinstance(node, ast.Import):
            names.update(a.name.split(".")[1] for a in node.names if a.name.startswith("osteomri."))
    return names


def test_the_documented_layers_are_the_packages():
    layers = _layers()
    packages = {p.name for p in (ROOT / "osteomri").iterdir() if (p / "__init__.py").exists()}
    assert set(layers) == packages, (layers, packages)
    text = (ROOT / "docs" / "architecture.md").read_text()
    assert all(f"{name}.py" in text for name in FACADES)


def test_the_package_docstring_draws_the_same_layers():
    import osteomri

    named = re.findall(r"``(\w+)``", osteomri.__doc__)
    assert named == list(reversed(_layers())), named


def test_imports_only_point_downward():
    rank = {name: i for i, name in enumerate(reversed(_layers()))}  # io lowest
    bad = []
    for path in sorted((ROOT / "osteomri").rglob("*.py")):
        rel = path.relative_to(ROOT / "osteomri").parts
        layer = FACADES.get(Path(rel[0]).stem, rel[0]) if len(rel) > 1 or Path(rel[0]).stem in FACADES else None
        if layer is None or layer in LEAVES:
            continue
        for target in _runtime_imports(path) - LEAVES - {layer}:
            target = FACADES.get(target, target)
            if layer == "stats" or rank[target] >= rank[layer]:
                bad.append(f"{'/'.join(rel)} imports osteomri.{target}")
    assert not bad, "imports that do not point downward:\n" + "\n".join(bad)


def test_importing_osteomri_selects_no_matplotlib_backend(tmp_path):
    code = (
        "import sys, matplotlib\n"
        "import osteomri.cli.main, osteomri.report.figures, osteomri.report.cohort, osteomri.report.figures_study\n"
        "assert 'matplotlib.pyplot' not in sys.modules\n"
        "assert matplotlib.rcParams._get_backend_or_none() is None\n"
        "from osteomri.report._mpl import plt\n"
        "fig, ax = plt.subplots(figsize=(2, 2)); ax.plot([0, 1])\n"
        f"fig.savefig({str(tmp_path / 'x.png')!r})\n"
        "assert 'matplotlib.pyplot' not in sys.modules\n"
    )
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT)
    assert run.returncode == 0, run.stderr
    assert (tmp_path / "x.png").read_bytes()[:4] == b"\x89PNG"
