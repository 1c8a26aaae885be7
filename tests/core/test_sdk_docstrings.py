"""Every public class a driver or component author meets says in its docstring what it owns."""

import ast
from pathlib import Path

from tests.source import parse_file

ROOT = Path(__file__).resolve().parents[2]

#: the modules a driver family, a component or a trigger kind is written against
SDK_MODULES = (
    "gateway/driver.py",
    "gateway/options.py",
    "gateway/model.py",
    "gateway/resources.py",
    "gateway/clock.py",
    "gateway/components.py",
    "gateway/store/state.py",
    "gateway/config.py",
    "gateway/problems.py",
    "gateway/units.py",
    "gateway/wiring.py",
    "gateway/hub.py",
    "gateway/actuation.py",
    "gateway/actuators.py",
    "gateway/overrides.py",
    "gateway/devices.py",
    "gateway/service.py",
    "gateway/sdnotify.py",
    "gateway/logfmt.py",
    "gateway/entrypoints.py",
    "gateway/store/store.py",
    "gateway/store/config.py",
    "gateway/coap/linkformat.py",
    "gateway/coap/credentials.py",
    "gateway/coap/senml.py",
    "gateway/coap/numbers.py",
    "gateway/coap/uplink_config.py",
    "gateway/coap/uplink_policy.py",
    "gateway/coap/api_config.py",
    "gateway/coap/rd_config.py",
    "gateway/rules/config.py",
    "gateway/rules/loader.py",
    "gateway/rules/ruleset.py",
    "gateway/rules/triggers/base.py",
    "gateway/rules/triggers/cron.py",
    "gateway/rules/triggers/every.py",
    "gateway/rules/triggers/point.py",
    "gateway/rules/triggers/stale.py",
    "gateway/rules/triggers/sun.py",
    "gateway/rules/triggers/when.py",
)


def test_every_public_class_of_the_sdk_has_a_docstring():
    missing = []
    for name in SDK_MODULES:
        tree = parse_file(ROOT / name)
        assert ast.get_docstring(tree), f"{name} has no module docstring"
        missing += [
            f"{name}: {node.name}"
            for node in tree.body
            if isinstance(node, ast.ClassDef)
            and not node.name.startswith("_")
            and not ast.get_docstring(node)
        ]
    assert missing == []
