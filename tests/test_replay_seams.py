"""The Connector internals that RecordingConnector and ReplayConnector override or use
still exist under the same names, so a rename in connector.py fails here loudly instead
of silently turning an override into dead code (a replay that runs in real time, a
recorder that stops recording REST answers)."""

from __future__ import annotations

import ast
import inspect

import pytest

import rxconnector.replay as rxreplay
from rxconnector.config import Config
from rxconnector.connector import Connector

#: Connector state that ReplayConnector.__init__ assigns in place of start(): if the
#: Connector renamed one, the assignment would create an attribute nobody reads.
_STATE_REPLAY_SETS = ("_scheduler", "_snapshot_gate", "_rest", "_started")


def _class_node(cls: type) -> ast.ClassDef:
    tree = ast.parse(inspect.getsource(rxreplay))
    for node in tree.body:
        if isinstance(node, ast.ClassDef) and node.name == cls.__name__:
            return node
    raise AssertionError(f"{cls.__name__} not found in {rxreplay.__file__}")


def _methods(node: ast.ClassDef) -> set[str]:
    return {
        item.name for item in node.body if isinstance(item, ast.FunctionDef | ast.AsyncFunctionDef)
    }


def _assigned(node: ast.ClassDef) -> set[str]:
    """``self.X`` names the class body assigns."""
    names: set[str] = set()
    for sub in ast.walk(node):
        targets: list[ast.expr] = []
        if isinstance(sub, ast.Assign):
            targets = list(sub.targets)
        elif isinstance(sub, ast.AnnAssign):
            targets = [sub.target]
        for target in targets:
            for part in ast.walk(target):
                if (
                    isinstance(part, ast.Attribute)
                    and isinstance(part.value, ast.Name)
                    and part.value.id == "self"
                ):
                    names.add(part.attr)
    return names


def _used(node: ast.ClassDef) -> set[str]:
    """``self.X`` and ``super().X`` names the class body reads or calls."""
    names: set[str] = set()
    for sub in ast.walk(node):
        if not isinstance(sub, ast.Attribute):
            continue
        base = sub.value
        is_self = isinstance(base, ast.Name) and base.id == "self"
        is_super = (
            isinstance(base, ast.Call)
            and isinstance(base.func, ast.Name)
            and base.func.id == "super"
        )
        if is_self or is_super:
            names.add(sub.attr)
    return names


@pytest.fixture(scope="module")
def connector_names() -> set[str]:
    """Every name a fresh Connector has: class members and what ``__init__`` sets."""
    connector = Connector(Config.binance())
    return set(dir(Connector)) | set(vars(connector))


@pytest.mark.parametrize("cls", [rxreplay.RecordingConnector, rxreplay.ReplayConnector])
class TestConnectorSeams:
    """Every Connector member the recording and replay connectors rely on exists."""

    def test_every_overridden_private_method_is_still_a_connector_method(self, cls: type) -> None:
        overridden = {
            name
            for name in _methods(_class_node(cls))
            if name.startswith("_") and not name.startswith("__")
        }
        # the class's own helpers are not overrides; they are not on Connector by design
        own = {name for name in overridden if name not in vars(Connector)}
        own_helpers = {
            *("_frame", "_step_ended", "_safely", "_begin", "_step", "_end"),
            *("_every", "_sync"),  # the recorder's periodic sync to disk
        }
        assert own <= own_helpers, (
            f"{cls.__name__} overrides {sorted(own - own_helpers)}, which Connector no longer "
            "has: the override is dead code (was the Connector method renamed?)"
        )

    def test_every_public_override_matches_a_connector_member(self, cls: type) -> None:
        public = {n for n in _methods(_class_node(cls)) if not n.startswith("_")}
        own_api = {"run", "play", "close"}
        missing = {n for n in public - own_api if not hasattr(Connector, n)}
        assert not missing, f"{cls.__name__} overrides {sorted(missing)}, unknown to Connector"

    def test_every_connector_attribute_it_reads_exists(
        self, cls: type, connector_names: set[str]
    ) -> None:
        node = _class_node(cls)
        defined_here = _methods(node) | _assigned(node)
        unknown = {name for name in _used(node) if name not in defined_here | connector_names}
        assert not unknown, (
            f"{cls.__name__} uses {sorted(unknown)}, which neither it nor Connector defines"
        )


class TestReplayStateOverrides:
    """The Connector state ReplayConnector sets up itself (instead of start()) is state the
    Connector really reads."""

    def test_the_state_replay_assigns_is_connector_state(self, connector_names: set[str]) -> None:
        assigned = _assigned(_class_node(rxreplay.ReplayConnector))
        assert set(_STATE_REPLAY_SETS) <= assigned  # the list above is still what replay sets
        missing = [name for name in _STATE_REPLAY_SETS if name not in connector_names]
        assert not missing, f"Connector no longer has {missing}; ReplayConnector sets them"

    def test_the_connector_still_reads_that_state(self) -> None:
        source = inspect.getsource(Connector)
        unread = [name for name in _STATE_REPLAY_SETS if f"self.{name}" not in source]
        assert not unread
