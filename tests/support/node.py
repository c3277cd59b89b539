"""The Node packages of tests/node (openid-client, axe-core, standardwebhooks), for the tests that
drive a client nobody here wrote. `.ci/run` installs them with `npm ci --prefix tests/node`; a test
that needs them calls `require_node_packages()`, which skips with a reason naming tests/node (CI
fails when such a test was skipped)."""

from __future__ import annotations

import shutil
from pathlib import Path

NODE_DIR = Path(__file__).resolve().parents[1] / "node"
NODE_MODULES = NODE_DIR / "node_modules"
SKIP_REASON = "tests/node's packages are not installed: npm ci --prefix tests/node"


def node_packages_missing(*packages: str) -> bool:
    return shutil.which("node") is None or any(not (NODE_MODULES / name / "package.json").is_file() for name in packages)


def require_node_packages(*packages: str) -> Path:
    """Skip the calling test unless node and `packages` are installed; return node_modules."""
    import pytest

    if node_packages_missing(*packages):
        pytest.skip(SKIP_REASON)
    return NODE_MODULES


def axe_script() -> str:
    """axe-core's browser build, to inject into a page (Selenium's execute_script)."""
    return (require_node_packages("axe-core") / "axe-core" / "axe.min.js").read_text()
