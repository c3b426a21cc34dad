"""Imports point one way: routes/sockets/tasks → services → providers/storage/audio →
models, and no blueprint imports another. Inside services, each sub-package imports only
those below it in ``SERVICE_ORDER``.

The imports are read from the source (every ``import`` statement, those inside functions
too) and followed transitively, so a service that reaches a route through a helper is
caught as surely as one that imports it directly.
"""

from __future__ import annotations

import ast
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
APP = ROOT / "webapp" / "app"
PREFIX = "webapp.app"

LOWER = {  # layer → what it may never reach, directly or through anything it imports
    "services": ("web", "blueprint", "tasks", "factory"),
    "providers": ("services", "web", "blueprint", "tasks", "factory"),
    "storage": ("services", "web", "blueprint", "tasks", "factory"),
    "audio": ("services", "web", "blueprint", "tasks", "factory"),
    "models": ("services", "providers", "storage", "web", "blueprint", "tasks",
               "factory"),
    "foundation": ("services", "web", "blueprint", "tasks", "factory"),
}
REQUEST_BOUND = {"request", "g", "session"}
"""Names of ``flask`` that exist only while a request is handled."""
SERVICES = PREFIX + ".services"
SERVICE_ORDER = ("platform", "voice_library", "sessions", "speech", "conversation")
"""The sub-packages of services, lowest first: each may reach only those before it."""
ALLOWED = {
    # ``AliyunAPIService`` used from a plain script builds its own app, once.
    ("webapp.app.services.speech.aliyun", "webapp.app"),
}


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def modules() -> dict[str, Path]:
    return {module_name(path): path for path in APP.rglob("*.py")}


def imports_of(source: str, known: set[str]) -> tuple[set[str], set[str]]:
    """The app modules a source imports, and the request-bound names it takes from flask."""
    found: set[str] = set()
    flask_names: set[str] = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names if alias.name.startswith(PREFIX))
        elif isinstance(node, ast.ImportFrom) and node.module:
            if node.module == "flask":
                flask_names.update(a.name for a in node.names if a.name in REQUEST_BOUND)
            elif node.module.startswith(PREFIX):
                for alias in node.names:
                    submodule = f"{node.module}.{alias.name}"
                    found.add(submodule if submodule in known else node.module)
    return found, flask_names


def blueprint_packages(sources: dict[str, str]) -> set[str]:
    """The top-level packages (or modules) of the app that define a Flask blueprint."""
    return {top_level(name) for name, source in sources.items() if "Blueprint(" in source}


def top_level(name: str) -> str:
    rest = name[len(PREFIX) + 1:] if name.startswith(PREFIX + ".") else ""
    return rest.split(".")[0] if rest else ""


def layer_of(name: str, blueprints: set[str]) -> str:
    top = top_level(name)
    if name == PREFIX:
        return "factory"
    if top in ("services", "providers", "storage", "audio", "models", "tasks", "web"):
        return top
    # Transports that are not blueprints (Wyoming's TCP server) sit with the blueprints.
    if top in blueprints or top in ("api", "wyoming"):
        return "blueprint"
    return "foundation"


def violations(sources: dict[str, str]) -> list[str]:
    """Every import that points the wrong way, as readable sentences."""
    known = set(sources)
    graph: dict[str, set[str]] = {}
    problems: list[str] = []
    blueprints = blueprint_packages(sources)
    for name, source in sources.items():
        graph[name], flask_names = imports_of(source, known)
        if flask_names and layer_of(name, blueprints) in LOWER:
            problems.append(f"{name} imports flask.{', flask.'.join(sorted(flask_names))}")
    for name in sorted(sources):
        layer = layer_of(name, blueprints)
        if layer in LOWER:
            problems += _layer_order(name, graph, LOWER[layer], blueprints)
        if name.startswith(SERVICES + "."):
            problems += _service_order(name, graph)
        if layer == "blueprint" and top_level(name) != "api":
            for target in sorted(graph[name]):
                other = top_level(target)
                if (layer_of(target, blueprints) == "blueprint"
                        and other not in (top_level(name), "api")):
                    problems.append(f"{name} (a blueprint) imports the blueprint {target}")
    return problems


def _layer_order(name: str, graph: dict[str, set[str]], banned: tuple[str, ...],
                 blueprints: set[str]) -> list[str]:
    """The modules of a ``banned`` layer that ``name`` reaches."""
    chains = _reaches(name, graph, lambda t: layer_of(t, blueprints) in banned)
    return [f"{name} reaches {chain[-1]}: {' → '.join(chain)}" for chain in chains]


def service_package(name: str) -> str:
    """The sub-package of services a services module belongs to ("" for services itself)."""
    return name[len(SERVICES) + 1:].split(".")[0] if name.startswith(SERVICES + ".") else ""


def _service_order(name: str, graph: dict[str, set[str]]) -> list[str]:
    """The modules of a sub-package above ``name``'s that it reaches through services
    modules; ``services/__init__`` counts as one, since importing it imports speech."""
    package = service_package(name)
    if package not in SERVICE_ORDER:
        return [f"{name} is in services.{package}, which has no place in SERVICE_ORDER"]
    above = SERVICE_ORDER[SERVICE_ORDER.index(package) + 1:]
    chains = _reaches(name, graph, lambda t: service_package(t) in above,
                      within=lambda t: t == SERVICES or t.startswith(SERVICES + "."))
    return [f"{name} (services.{package}) reaches {chain[-1]}, which sits above it in "
            f"services.{service_package(chain[-1])}: {' → '.join(chain)}" for chain in chains]


def _reaches(start: str, graph: dict[str, set[str]], banned: Callable[[str], bool],
             within: Callable[[str], bool] = lambda _: True) -> list[list[str]]:
    """The chain of imports to each banned module ``start`` reaches, following only the
    modules ``within`` admits."""
    seen = {start}
    queue: list[list[str]] = [[start]]
    found = []
    while queue:
        chain = queue.pop(0)
        for target in sorted(graph.get(chain[-1], ())):
            if target in seen or (chain[-1], target) in ALLOWED or not within(target):
                continue
            seen.add(target)
            if banned(target):
                found.append([*chain, target])
            else:
                queue.append([*chain, target])
    return found


def test_imports_point_one_way() -> None:
    sources = {name: path.read_text(encoding="utf-8") for name, path in modules().items()}
    assert violations(sources) == []


def test_a_wrong_way_import_is_caught() -> None:
    sources = {
        "webapp.app.api": "from flask import request\n",
        "webapp.app.helpers": "def f():\n    from webapp.app.api import ok\n",
        "webapp.app.services.a": "from webapp.app import helpers\n",
        "webapp.app.services.b": "from flask import g, current_app\n",
        "webapp.app.services.c": "from webapp.app.tasks import job\n",
        "webapp.app.tasks": "",
        "webapp.app.providers.x": "import webapp.app.services.a\n",
        "webapp.app.role": "from flask import Blueprint\nbp = Blueprint('role', 'r')\n",
        "webapp.app.role.routes": "from webapp.app.voice.routes import helper\n",
        "webapp.app.voice": "from flask import Blueprint\nbp = Blueprint('voice', 'v')\n",
        "webapp.app.voice.routes": "from webapp.app.api import ok\n",
    }
    problems = violations(sources)
    assert ("webapp.app.services.a reaches webapp.app.api: webapp.app.services.a → "
            "webapp.app.helpers → webapp.app.api") in problems
    assert "webapp.app.services.b imports flask.g" in problems
    assert any(p.startswith("webapp.app.services.c reaches webapp.app.tasks") for p in problems)
    assert any(p.startswith("webapp.app.providers.x reaches webapp.app.services.a")
               for p in problems)
    assert ("webapp.app.role.routes (a blueprint) imports the blueprint "
            "webapp.app.voice.routes") in problems
    assert not any(p.startswith("webapp.app.voice.routes") for p in problems)


def test_a_backwards_import_between_service_packages_is_caught() -> None:
    services = "webapp.app.services"
    sources = {
        services: f"from {services}.speech.aliyun import Service\n",
        f"{services}.platform.files": "",
        f"{services}.platform.health": f"from {services} import Service\n",
        f"{services}.voice_library.voices": f"from {services}.platform import files\n",
        f"{services}.voice_library.cloning":
            f"def f():\n    from {services}.sessions import events\n",
        f"{services}.sessions.events": "",
        f"{services}.sessions.roles": f"from {services}.voice_library import voices\n",
        f"{services}.speech.aliyun": f"from {services}.sessions import roles\n",
        f"{services}.speech.assistant": f"from {services}.conversation import turns\n",
        f"{services}.conversation.turns": f"import {services}.speech.aliyun\n",
        f"{services}.extras": "",
    }
    problems = violations(sources)
    assert (f"{services}.voice_library.cloning (services.voice_library) reaches "
            f"{services}.sessions.events, which sits above it in services.sessions: "
            f"{services}.voice_library.cloning → {services}.sessions.events") in problems
    assert (f"{services}.platform.health (services.platform) reaches "
            f"{services}.speech.aliyun, which sits above it in services.speech: "
            f"{services}.platform.health → {services} → {services}.speech.aliyun") in problems
    assert any(p.startswith(f"{services}.speech.assistant (services.speech) reaches "
                            f"{services}.conversation.turns") for p in problems)
    assert (f"{services}.extras is in services.extras, which has no place in SERVICE_ORDER"
            in problems)
    assert len(problems) == 4
