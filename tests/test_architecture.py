"""The core never imports Qt: only pathview.app may (the napari / QuPath split)."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pathview

PACKAGE = Path(pathview.__file__).parent


def test_no_module_outside_app_imports_qt():
    offenders = []
    for path in PACKAGE.rglob("*.py"):
        rel = path.relative_to(PACKAGE)
        if rel.parts[0] == "app":
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            names = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module]
            offenders += [f"{rel}: {n}" for n in names if n.split(".")[0] in {"PySide6", "PyQt5", "PyQt6", "shiboken6"}]
    assert offenders == []


def test_importing_every_core_module_loads_no_qt():
    modules = [
        "pathview." + ".".join(p.relative_to(PACKAGE).with_suffix("").parts)
        for p in PACKAGE.rglob("*.py")
        if p.relative_to(PACKAGE).parts[0] != "app" and p.name != "__main__.py"
    ]
    code = "import sys\n" + "".join(f"import {m.removesuffix('.__init__')}\n" for m in modules) + \
        "bad = [m for m in sys.modules if m.startswith(('PySide6', 'shiboken6'))]\nprint(bad)\nassert not bad"
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stdout + res.stderr
