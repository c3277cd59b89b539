"""The house's arrows run one way (docs/architecture.md): read every import of the code with `ast`
and fail on any that runs the wrong way.

- A room imports `core` and the rooms it builds on (ALLOWED), never one above it; `core` imports no
  room. Two-factor plugs into sign-in as a stage named in the settings, so `signin` imports no `mfa`.
- A service never imports a view: only the modules that answer requests or commands (VIEW_MODULES)
  import a room's `api`, `admin` or `site` module.
- The app's aggregators (accounts.models, accounts.admin, accounts.urls, the management commands)
  and the project (authserver) may import every room: they sit above all of them.
- Every package of accounts/ is a room of ALLOWED, so a new capability has to say where it sits.
"""

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

# Each room, and the rooms it may import (core aside, which every room may import).
ALLOWED: dict[str, set[str]] = {
    "core": set(),
    "accounts.users": set(),
    "accounts.audit": {"accounts.users"},
    "accounts.notices": {"accounts.users"},
    "accounts.privileges": {"accounts.users", "accounts.audit"},
    "accounts.keys": {"accounts.users", "accounts.audit"},
    "accounts.webhooks": {"accounts.users", "accounts.audit"},
    "accounts.sessions": {"accounts.users", "accounts.audit", "accounts.keys", "accounts.privileges"},
    "accounts.passwords": {
        "accounts.users", "accounts.audit", "accounts.notices", "accounts.sessions", "accounts.webhooks",
    },
    "accounts.account": {
        "accounts.users", "accounts.audit", "accounts.notices", "accounts.sessions", "accounts.passwords",
        "accounts.webhooks",
    },
    "accounts.mfa": {
        "accounts.users", "accounts.audit", "accounts.notices", "accounts.sessions", "accounts.passwords",
        "accounts.webhooks",
    },
    "accounts.signin": {
        "accounts.users", "accounts.audit", "accounts.notices", "accounts.sessions", "accounts.passwords",
        "accounts.account", "accounts.webhooks",
    },
    "accounts.passkeys": {
        "accounts.users", "accounts.audit", "accounts.notices", "accounts.sessions", "accounts.passwords",
        "accounts.signin", "accounts.webhooks",
    },
    "accounts.clients": {"accounts.users", "accounts.audit"},
    "accounts.oidc": {
        "accounts.users", "accounts.audit", "accounts.keys", "accounts.sessions", "accounts.clients",
        "accounts.signin", "accounts.mfa", "accounts.passkeys", "accounts.webhooks",
    },
    "accounts.staff": {
        "accounts.users", "accounts.audit", "accounts.notices", "accounts.privileges", "accounts.keys",
        "accounts.sessions", "accounts.passwords", "accounts.account", "accounts.mfa", "accounts.signin",
        "accounts.clients", "accounts.passkeys", "accounts.webhooks",
    },
    "legacy_flask": {"accounts.users", "accounts.passwords"},
}
# Above every room: the app's registries and commands, and the project.
AGGREGATORS = {"accounts", "authserver"}
# Modules that answer a request or a command: they alone may import another module of this kind.
VIEW_NAMES = {"api", "admin", "site", "urls", "operations", "status", "views", "pages"}
OURS = ("core", "accounts", "legacy_flask", "authserver")


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _room(module: str) -> str | None:
    """Return the room a module of ours belongs to, or None for a module of someone else's."""
    parts = module.split(".")
    if parts[0] not in OURS:
        return None
    if parts[0] == "accounts" and len(parts) > 1 and f"accounts.{parts[1]}" in ALLOWED:
        return f"accounts.{parts[1]}"
    return parts[0]


def _is_view(module: str) -> bool:
    last = module.rsplit(".", 1)[-1]
    return (
        last in VIEW_NAMES or last.startswith("admin_") or last.endswith("_api") or ".management.commands." in module
    )


def _code_modules():
    for top in ("core", "accounts", "legacy_flask", "authserver"):
        for path in sorted((ROOT / top).rglob("*.py")):
            if "migrations" not in path.parts:
                yield path


def _imports(path: Path):
    """Yield (line, imported module) for every import of the file, in functions too."""
    module = _module_name(path)
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(anchor + ([base] if base else []))
            # `from package import module` imports the module: judge each name as one.
            for alias in node.names:
                yield node.lineno, f"{base}.{alias.name}"


def _wrong(module: str, imported: str) -> str | None:
    """Return why `module` may not import `imported`, or None if the arrow runs the right way."""
    source, target = _room(module), _room(imported)
    if target is None or source in AGGREGATORS:
        return None
    if target != source and (target in AGGREGATORS or target not in ALLOWED[source] | {"core"}):
        return f"{source} may not import {target}"
    if _is_view(imported) and not _is_view(module):
        return "only a view imports a view"
    return None


def test_every_import_runs_down_the_house():
    wrong = []
    for path in _code_modules():
        module = _module_name(path)
        for line, imported in _imports(path):
            reason = _wrong(module, imported)
            if reason:
                wrong.append(f"{path.relative_to(ROOT)}:{line} imports {imported}: {reason}")
    assert wrong == []


def test_every_package_of_the_app_is_a_room_with_its_place():
    packages = {
        f"accounts.{path.name}"
        for path in (ROOT / "accounts").iterdir()
        if path.is_dir() and (path / "__init__.py").exists() and path.name not in {"management", "migrations", "models"}
    }
    assert packages - set(ALLOWED) == set()


def test_the_rooms_are_those_the_architecture_doc_draws():
    doc = (ROOT / "docs" / "architecture.md").read_text()
    missing = [room for room in ALLOWED if f"`{room.replace('.', '/')}/`" not in doc]
    assert missing == []


@pytest.mark.parametrize(
    "module, imported, reason",
    [
        ("accounts.signin.services", "accounts.mfa.services", "accounts.signin may not import accounts.mfa"),
        ("core.api", "accounts.users.models", "core may not import accounts.users"),
        ("accounts.users.models", "accounts.models", "accounts.users may not import accounts"),
        ("accounts.sessions.services", "accounts.sessions.api", "only a view imports a view"),
        ("accounts.mfa.services", "accounts.passwords.credentials", None),
        ("accounts.staff.admin_users", "accounts.sessions.admin", None),
        ("accounts.management.commands.signing_keys", "accounts.keys.services", None),
        ("accounts.keys.services", "django.db", None),
    ],
)
def test_the_check_tells_each_kind_of_wrong_arrow(module, imported, reason):
    assert _wrong(module, imported) == reason


def test_a_settings_file_without_the_two_factor_stage_fails_the_checks(settings):
    """Sign-in reaches two-factor only through SIGNIN_STAGES: leaving it out must not pass quietly."""
    from django.core import checks

    settings.SIGNIN_STAGES = []
    assert "accounts.E001" in [message.id for message in checks.run_checks(tags=[checks.Tags.security])]
    settings.SIGNIN_STAGES = ["accounts.mfa.stages.two_factor"]
    assert "accounts.E001" not in [message.id for message in checks.run_checks(tags=[checks.Tags.security])]
