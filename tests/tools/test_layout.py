"""The test tree follows the code: every unit test module under tests/service is named after the module of
service/ it tests, at the same path, so that a module's tests are found by its path."""

from __future__ import annotations

from tests.paths import ROOT


def test_every_unit_test_module_names_a_module_of_service_at_its_path() -> None:
    tests = ROOT / "tests" / "service"
    modules = sorted(tests.rglob("test_*.py"))
    assert len(modules) > 30, modules
    orphans = []
    for module in modules:
        tested = ROOT / "service" / module.relative_to(tests).parent / module.name.removeprefix("test_")
        if not tested.is_file():
            orphans.append(str(module.relative_to(ROOT)))
    assert not orphans, f"no service/ module at these tests' paths: {orphans}"
