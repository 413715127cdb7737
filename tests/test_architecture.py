"""The one-way architecture of issue 11, enforced from the code itself.

Every fact here is read from the source with :mod:`ast` (imports, comparisons, line
counts), never from a hand-written list of modules, so a moved or new module is
checked the moment it exists. The rules:

(a) layering: a module imports only from the packages its layer may see (``ALLOWED``);
(b) ``aiohttp`` is imported only in ``transport/`` and ``testing/simulator/``;
(c) no branching on venue names (``== "bybit"``, ``in ("binance", ...)``, ``case
    "bybit":``, ``.startswith("binance")``) outside ``exchanges/``, ``venues.py`` and
    ``testing/simulator/`` -- venue facts belong to the registry (``venues.py``); the
    CLI may still name venues in its help text and alias tables, which are not branches;
(d) every module is at most ``MAX_MODULE_LINES`` lines unless its docstring has a line
    starting ``Long module:`` that gives the reason;
(e) no function or method is longer than ``MAX_FUNCTION_LINES`` lines (its docstring not
    counted);
(g) no ``nonlocal``: state that outlives a call lives in a small named class (attributes,
    one method per event), not in a closure;
(f) every module under ``exchanges/`` imports in a fresh interpreter where ``aiohttp``
    and ``reactivex`` cannot be imported (venue code is pure: data, parsers, rules);
(h) ``rest/`` is the one REST engine, not a home for venue clients: no module under it
    imports a venue's package (``rxconnector.exchanges.<venue>``); a venue's REST
    surface is pure plans in ``exchanges/<venue>/`` that the registry hands the generic
    client (``rest/planned.py``).

Today's tree breaks these rules in many places; each current breach is listed in the
``KNOWN_*`` set of its rule. The test fails on any breach NOT in its set (a new one: fix
it, don't add it) and on any set entry that no longer breaches (a stale one: delete the
entry, so the debt can only shrink). The lead trims these sets as the issue-11 branches
land; never add an entry to make a new breach pass.
"""

from __future__ import annotations

import ast
import functools
import json
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "rxconnector"

MAX_MODULE_LINES = 600
MAX_FUNCTION_LINES = 60

# ---------------------------------------------------------------------------------------
# (a) the layers of TEAM.md / issue 11. A "component" is the first name under
# rxconnector/ (a top-level module or a sub-package); "__init__" is the package root
# (the public facade, which re-exports from everywhere).
# ---------------------------------------------------------------------------------------
LAYERS: dict[str, int] = {
    # 0 base: the vocabulary every layer shares
    "errors": 0,
    "models": 0,
    "config": 0,
    "log": 0,
    "_scheduling": 0,
    "nonce": 0,
    "_version": 0,
    "market_data": 0,  # the feed surface every connector satisfies (typing only)
    # 1 rate limiting, the public operators, pure venue code
    "rate": 1,
    "operators": 1,
    "exchanges": 1,
    # 2 the only aiohttp client user
    "transport": 2,
    # 3 the REST engine and the streaming machinery
    "rest": 3,
    "streams": 3,
    "health": 3,  # the health streams hubs, parsers and the facade report into
    "seams": 3,  # the connector's declared construction seams (hub protocol, factories)
    # 4 clock sync and the venue registry
    "clock": 4,
    "venues": 4,
    "rest_runtime": 4,  # the connector's REST object, rate-limit probe and clock sync at run time
    # 5 the facade
    "connector": 5,
    "rest_calls": 5,  # the connector's REST calls, forwarded to the venue REST object
    # 6 everything built on the facade
    "sync": 6,
    "replay": 6,
    "recording": 6,
    "notebook": 6,
    "terminal": 6,
    "demo_view": 6,
    "bus": 6,
    "cli": 6,
    "arguments": 6,  # what the command line accepts; shared by cli and the bus's publish
    "__main__": 6,
    "testing": 6,
    "__init__": 6,
}
BASE = frozenset(name for name, layer in LAYERS.items() if layer == 0)


def _allowed_targets(component: str) -> frozenset[str]:
    """What ``component`` may import: its own layer and every lower one, narrowed by the
    per-package rules of issue 11 (layer 1 packages see only the base; bus never sees cli)."""
    if component in ("rate", "operators", "exchanges"):
        return BASE | {component}
    layer = LAYERS[component]
    allowed = {name for name, other in LAYERS.items() if other <= layer}
    if component == "bus":
        allowed.discard("cli")
    return frozenset(allowed)


ALLOWED: dict[str, frozenset[str]] = {name: _allowed_targets(name) for name in LAYERS}

# ---------------------------------------------------------------------------------------
# KNOWN_* : the debt of today's tree, one set per rule. The lead trims these sets as the
# issue-11 branches (REST engine, book-sync rules, hub, registry, seams, recovery, bus,
# rate/accounts) land: an entry that no longer breaches fails the test until removed.
# Never add an entry to make a new breach pass -- fix the code instead.
# ---------------------------------------------------------------------------------------
# (a) "importer -> imported" (dotted module names).
KNOWN_LAYER_VIOLATIONS: frozenset[str] = frozenset()

# (b) modules outside transport/ and testing/simulator/ that import aiohttp.
AIOHTTP_ALLOWED_PREFIXES = ("rxconnector.transport", "rxconnector.testing.simulator")
KNOWN_AIOHTTP_IMPORTS: frozenset[str] = frozenset()

# (c) "module:function" places that compare against a venue name.
VENUE_NAME_ALLOWED_PREFIXES = (
    "rxconnector.exchanges",
    "rxconnector.venues",
    "rxconnector.testing.simulator",
)
KNOWN_VENUE_BRANCHES: frozenset[str] = frozenset()

# (d) modules over MAX_MODULE_LINES without a "Long module:" reason.
KNOWN_LONG_MODULES: frozenset[str] = frozenset()

# (e) "module:qualified.function" over MAX_FUNCTION_LINES.
KNOWN_LONG_FUNCTIONS: frozenset[str] = frozenset()

# (g) "module:function" places that use ``nonlocal``.
KNOWN_NONLOCAL: frozenset[str] = frozenset()

# (f) exchanges/ modules that cannot be imported without aiohttp/reactivex.
KNOWN_IMPURE_EXCHANGE_MODULES: frozenset[str] = frozenset()

# (h) rest/ modules that import a venue's package.
KNOWN_VENUE_REST_MODULES: frozenset[str] = frozenset()


# ---------------------------------------------------------------------------------------
# reading the tree
# ---------------------------------------------------------------------------------------
def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


@functools.cache
def _sources() -> dict[str, tuple[Path, str, ast.Module]]:
    """Every module of the package: dotted name -> (path, text, tree)."""
    _pure_import_probe()  # overlaps the (f) probe's interpreter start with the parsing
    out: dict[str, tuple[Path, str, ast.Module]] = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        text = path.read_text(encoding="utf-8")
        out[_module_name(path)] = (path, text, ast.parse(text, filename=str(path)))
    return out


def _component(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "__init__"


def _rel(module: str) -> str:
    return str(_sources()[module][0].relative_to(ROOT))


def _is_package(module: str) -> bool:
    return _sources()[module][0].name == "__init__.py"


def _resolve_from(module: str, node: ast.ImportFrom) -> str:
    if not node.level:
        return node.module or ""
    base = module.split(".")
    if not _is_package(module):
        base.pop()
    if node.level > 1:
        base = base[: len(base) - (node.level - 1)]
    return ".".join([*base, *([node.module] if node.module else [])])


@functools.cache
def _imports(module: str) -> tuple[tuple[str, int], ...]:
    """(imported module, line) for every import in ``module``, wherever it sits (top
    level, inside functions, under TYPE_CHECKING) plus literal
    ``importlib.import_module("...")`` calls: each one is a dependency arrow."""
    known = _sources()
    found: list[tuple[str, int]] = []
    for node in ast.walk(known[module][2]):
        if isinstance(node, ast.Import):
            found += [(alias.name, node.lineno) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            target = _resolve_from(module, node)
            for alias in node.names:
                sub = f"{target}.{alias.name}"
                found.append((sub if sub in known else target, node.lineno))
        elif (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and node.func.attr == "import_module"
            and node.args
            and isinstance(node.args[0], ast.Constant)
            and isinstance(node.args[0].value, str)
        ):
            found.append((node.args[0].value, node.lineno))
    return tuple(found)


@functools.cache
def _scoped(module: str) -> tuple[tuple[str, ast.AST], ...]:
    """(qualified name of the enclosing def/class or "<module>", node) for every node
    of ``module`` (computed once; several rules read it)."""
    found: list[tuple[str, ast.AST]] = []
    stack: list[tuple[ast.AST, str]] = [(_sources()[module][2], "<module>")]
    while stack:
        node, scope = stack.pop()
        for child in ast.iter_child_nodes(node):
            found.append((scope, child))
            if isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
                stack.append(
                    (child, child.name if scope == "<module>" else f"{scope}.{child.name}")
                )
            else:
                stack.append((child, scope))
    return tuple(found)


def _check(rule: str, found: dict[str, str], known: frozenset[str], how_to_fix: str) -> None:
    """Fail on a breach missing from ``known`` and on a ``known`` entry that no longer
    breaches; ``found`` maps each breach key to a human-readable detail."""
    new = sorted(set(found) - known)
    stale = sorted(known - set(found))
    lines: list[str] = []
    if new:
        lines.append(f"{rule}: {len(new)} new breach(es):")
        lines += [f"  - {found[key]}" for key in new]
        lines.append(textwrap.indent(how_to_fix, "  "))
    if stale:
        lines.append(
            f"{rule}: {len(stale)} KNOWN entr(y/ies) no longer breach -- good; delete them "
            "from the KNOWN set in tests/test_architecture.py so the debt cannot return:"
        )
        lines += [f"  - {key!r}" for key in stale]
    if lines:
        pytest.fail("\n".join(lines), pytrace=False)


# ---------------------------------------------------------------------------------------
# (a) layering
# ---------------------------------------------------------------------------------------
def _layer_breaches() -> dict[str, str]:
    found: dict[str, str] = {}
    for module in _sources():
        source = _component(module)
        for target, line in _imports(module):
            if target != "rxconnector" and not target.startswith("rxconnector."):
                continue
            dest = _component(target)
            if source not in LAYERS or dest not in LAYERS or dest in ALLOWED[source]:
                continue
            found[f"{module} -> {target}"] = (
                f"{_rel(module)}:{line} imports {target}: {source} (layer "
                f"{LAYERS[source]}) may import only {sorted(ALLOWED[source])}, "
                f"and {dest} is layer {LAYERS[dest]}"
            )
    return found


def test_every_component_has_a_layer() -> None:
    unplaced = sorted({_component(m) for m in _sources()} - set(LAYERS))
    assert not unplaced, (
        f"rxconnector/{{{', '.join(unplaced)}}} has no layer: add it to LAYERS in "
        "tests/test_architecture.py at the layer of issue 11 it belongs to (the lowest "
        "layer that holds everything it imports), and describe it in README's Architecture."
    )


def test_imports_point_down_the_layers() -> None:
    _check(
        "layering",
        _layer_breaches(),
        KNOWN_LAYER_VIOLATIONS,
        "Arrows must point down: move the shared code to a lower layer (rate limiting into "
        "rate/, venue facts into exchanges/ or venues.py), or let the upper layer pass a "
        "typed callback/protocol down instead of importing upwards.",
    )


# ---------------------------------------------------------------------------------------
# (b) aiohttp
# ---------------------------------------------------------------------------------------
def test_aiohttp_only_in_transport_and_simulator() -> None:
    found: dict[str, str] = {}
    for module in _sources():
        if module.startswith(AIOHTTP_ALLOWED_PREFIXES):
            continue
        for target, line in _imports(module):
            if target == "aiohttp" or target.startswith("aiohttp."):
                found.setdefault(module, f"{_rel(module)}:{line} imports {target}")
    _check(
        "aiohttp outside transport/",
        found,
        KNOWN_AIOHTTP_IMPORTS,
        "Only rxconnector/transport/ (and the simulator) talk to aiohttp: use the transport "
        "layer's session/HTTP/WS API and its errors (rxconnector/transport/errors.py) instead.",
    )


# ---------------------------------------------------------------------------------------
# (c) venue names
# ---------------------------------------------------------------------------------------
def _config_literal(alias: str) -> set[str]:
    """The strings of ``alias = Literal[...]`` in rxconnector/config.py."""
    found: set[str] = set()
    for node in ast.walk(_sources()["rxconnector.config"][2]):
        if (
            isinstance(node, ast.Assign)
            and any(isinstance(t, ast.Name) and t.id == alias for t in node.targets)
            and isinstance(node.value, ast.Subscript)
        ):
            found |= {
                c.value
                for c in ast.walk(node.value.slice)
                if isinstance(c, ast.Constant) and isinstance(c.value, str)
            }
    return found


@functools.cache
def _venue_names() -> frozenset[str]:
    """The venue names of ``config.ExchangeName`` (read from the code) in every spelling
    the CLI accepts: ``binance_futures``, ``binance-futures``, ``bybit-linear``..."""
    names = {"binance", "binance_futures", "bybit"} | _config_literal("ExchangeName")
    spelled = names | {name.replace("_", "-") for name in names}
    categories = _config_literal("Category")
    return frozenset(spelled | {f"{name}-{cat}" for name in spelled for cat in categories})


def _venue_literal(node: ast.AST) -> str | None:
    venues = _venue_names()
    if isinstance(node, ast.Constant) and node.value in venues:
        return str(node.value)
    if isinstance(node, ast.Tuple | ast.List | ast.Set):
        for element in node.elts:
            if (hit := _venue_literal(element)) is not None:
                return hit
    if (
        isinstance(node, ast.Call)
        and node.args
        and isinstance(node.func, ast.Name)
        and node.func.id in ("frozenset", "set", "tuple")
    ):
        return _venue_literal(node.args[0])
    return None


_BRANCH_OPS = (ast.Eq, ast.NotEq, ast.In, ast.NotIn, ast.Is, ast.IsNot)


def _venue_branch(node: ast.AST) -> str | None:
    """The venue name ``node`` branches on, if it is a comparison, a ``case`` pattern or
    a ``startswith``/``endswith`` test against one."""
    if isinstance(node, ast.Compare) and any(isinstance(op, _BRANCH_OPS) for op in node.ops):
        for operand in (node.left, *node.comparators):
            if (hit := _venue_literal(operand)) is not None:
                return hit
    if isinstance(node, ast.MatchValue):
        return _venue_literal(node.value)
    if (
        isinstance(node, ast.Call)
        and isinstance(node.func, ast.Attribute)
        and node.func.attr in ("startswith", "endswith")
        and node.args
    ):
        return _venue_literal(node.args[0])
    return None


def test_no_branching_on_venue_names_outside_the_registry() -> None:
    found: dict[str, str] = {}
    for module in _sources():
        if module.startswith(VENUE_NAME_ALLOWED_PREFIXES):
            continue
        for scope, node in _scoped(module):
            if (venue := _venue_branch(node)) is not None:
                line = getattr(node, "lineno", 0)
                found.setdefault(
                    f"{module}:{scope}", f"{_rel(module)}:{line} ({scope}) branches on {venue!r}"
                )
    _check(
        "venue names outside exchanges/ and venues.py",
        found,
        KNOWN_VENUE_BRANCHES,
        "Do not ask which venue this is: put the differing fact (a URL, a rule factory, a "
        "flag) on the venue's registry entry in rxconnector/venues.py and read it from there.",
    )


# ---------------------------------------------------------------------------------------
# (d) module size, (e) function size
# ---------------------------------------------------------------------------------------
def _has_long_module_reason(tree: ast.Module) -> bool:
    doc = ast.get_docstring(tree) or ""
    return any(
        line.strip().startswith("Long module:") and line.strip() != "Long module:"
        for line in doc.splitlines()
    )


def test_modules_are_small_or_say_why() -> None:
    found: dict[str, str] = {}
    for module, (_, text, tree) in _sources().items():
        lines = len(text.splitlines())
        if lines > MAX_MODULE_LINES and not _has_long_module_reason(tree):
            found[module] = f"{_rel(module)} has {lines} lines (limit {MAX_MODULE_LINES})"
    _check(
        f"modules over {MAX_MODULE_LINES} lines",
        found,
        KNOWN_LONG_MODULES,
        "Split the module by job (one job per module), or, if its size is essential, add a "
        "line 'Long module: <the reason>' to its docstring.",
    )


def _code_lines(node: ast.FunctionDef | ast.AsyncFunctionDef) -> int:
    """Lines of a function from its ``def`` to its end, without its docstring: a long
    docstring (a marble diagram, the arguments explained) is documentation, not logic."""
    length = (node.end_lineno or node.lineno) - node.lineno + 1
    first = node.body[0]
    if (
        isinstance(first, ast.Expr)
        and isinstance(first.value, ast.Constant)
        and isinstance(first.value.value, str)
    ):
        length -= (first.end_lineno or first.lineno) - first.lineno + 1
    return length


def test_functions_are_short() -> None:
    found: dict[str, str] = {}
    for module in _sources():
        for scope, node in _scoped(module):
            if not isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                continue
            length = _code_lines(node)
            if length > MAX_FUNCTION_LINES:
                name = node.name if scope == "<module>" else f"{scope}.{node.name}"
                found[f"{module}:{name}"] = (
                    f"{_rel(module)}:{node.lineno} {name} has {length} lines "
                    f"(limit {MAX_FUNCTION_LINES})"
                )
    _check(
        f"functions over {MAX_FUNCTION_LINES} lines",
        found,
        KNOWN_LONG_FUNCTIONS,
        "Extract named helpers; a stateful closure becomes a small class whose state is "
        "attributes with one method per event.",
    )


def test_no_nonlocal_state() -> None:
    found: dict[str, str] = {}
    for module in _sources():
        for scope, node in _scoped(module):
            if isinstance(node, ast.Nonlocal):
                found[f"{module}:{scope}"] = (
                    f"{_rel(module)}:{node.lineno} {scope} rebinds {', '.join(node.names)} "
                    "with nonlocal"
                )
    _check(
        "nonlocal state",
        found,
        KNOWN_NONLOCAL,
        "Keep the state in a small named class (attributes, one method per event) and pass "
        "its bound methods where the closures went.",
    )


# ---------------------------------------------------------------------------------------
# (f) exchanges/ is pure
# ---------------------------------------------------------------------------------------
_PURE_IMPORT_PROBE = r"""
import importlib, importlib.abc, json, sys, traceback, types

BLOCKED = ("aiohttp", "reactivex")

class Block(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in BLOCKED:
            raise ImportError(f"{name} is blocked: exchanges/ must be pure")
        return None

sys.meta_path.insert(0, Block())
# The package root re-exports the whole library (Connector needs aiohttp); stand it in
# with a bare package so each probe measures the exchanges/ module's own imports.
root = types.ModuleType("rxconnector")
root.__path__ = [sys.argv[1]]
sys.modules["rxconnector"] = root
report = {}
# No sys.modules clean-up between probes: a module that stays imported was imported
# without the blocked packages, and a failed one is dropped by the import system.
for name in json.loads(sys.argv[2]):
    try:
        importlib.import_module(name)
    except Exception as exc:
        frames = [f for f in traceback.extract_tb(exc.__traceback__) if "rxconnector" in f.filename]
        where = f"{frames[-1].filename}:{frames[-1].lineno}" if frames else "?"
        report[name] = f"{type(exc).__name__}: {exc} (at {where})"
print(json.dumps(report))
"""


@functools.cache
def _pure_import_probe() -> subprocess.Popen[str]:
    """Start the probe interpreter (once); it runs while this process parses the tree."""
    modules = sorted(_module_name(path) for path in (PACKAGE / "exchanges").rglob("*.py"))
    return subprocess.Popen(
        [sys.executable, "-c", _PURE_IMPORT_PROBE, str(PACKAGE), json.dumps(modules)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


@pytest.fixture(autouse=True, scope="module")
def _reap_the_probe() -> Iterator[None]:
    """Wait for the probe interpreter even when its test was deselected."""
    yield
    if _pure_import_probe.cache_info().currsize:
        _pure_import_probe().communicate(timeout=60)


def test_exchanges_import_without_aiohttp_or_reactivex() -> None:
    stdout, stderr = _pure_import_probe().communicate(timeout=60)
    assert _pure_import_probe().returncode == 0, stderr
    failures: dict[str, str] = json.loads(stdout.strip().splitlines()[-1])
    _check(
        "exchanges/ importable without aiohttp/reactivex",
        {name: f"{name}: {error}" for name, error in failures.items()},
        KNOWN_IMPURE_EXCHANGE_MODULES,
        "exchanges/ holds pure data and rules: move Observables, sessions and I/O to "
        "streams/, rest/ or transport/, and import nothing from them here.",
    )


# ---------------------------------------------------------------------------------------
# (h) no venue code in the REST engine
# ---------------------------------------------------------------------------------------
def _venue_packages() -> set[str]:
    """``rxconnector.exchanges.<venue>``: every sub-package of exchanges/ (read from the tree)."""
    return {
        module
        for module in _sources()
        if module.startswith("rxconnector.exchanges.")
        and module.count(".") == 2
        and _is_package(module)
    }


def test_rest_holds_no_venue_module() -> None:
    venues = _venue_packages()
    assert {"rxconnector.exchanges.binance", "rxconnector.exchanges.bybit"} <= venues
    found: dict[str, str] = {}
    for module in _sources():
        if module != "rxconnector.rest" and not module.startswith("rxconnector.rest."):
            continue
        for target, line in _imports(module):
            venue = next((v for v in venues if target == v or target.startswith(v + ".")), None)
            if venue is not None:
                found.setdefault(module, f"{_rel(module)}:{line} imports {target}")
    _check(
        "venue code in rest/",
        found,
        KNOWN_VENUE_REST_MODULES,
        "rest/ is the one REST engine: write the venue's REST calls as plans in "
        "exchanges/<venue>/ (a VenuePlans subclass, its signer and error dialect) and name "
        "them in the venue's registry entry (venues.py); PlannedRest runs them.",
    )


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ('x == "bybit"', "bybit"),
        ('"binance_futures" != x', "binance_futures"),
        ('x in ("spot", "binance")', "binance"),
        ('x.startswith("bybit")', "bybit"),
        ('x == "spot"', None),
        ('f("bybit")', None),
    ],
)
def test_the_venue_branch_detector(source: str, expected: str | None) -> None:
    node = ast.parse(source, mode="eval").body
    assert _venue_branch(node) == expected


def test_the_venue_branch_detector_sees_match_cases() -> None:
    tree = ast.parse(
        'match x:\n    case "spot":\n        pass\n    case "bybit" | "z":\n        pass'
    )
    hits = [hit for node in ast.walk(tree) if (hit := _venue_branch(node))]
    assert hits == ["bybit"]
