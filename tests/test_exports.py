"""The public exports are complete and truthful: ``synapse_mojo.__all__`` and every public
subpackage's ``__all__`` name things that exist and import, once each, none of them private;
every public subpackage defines ``__all__``; every ``SynapseError`` in ``errors`` is exported
at the top level.

Subpackages whose name starts with ``_`` (``_dev``: the benchmark harness and tooling) are not
public API and are left out.
"""

from __future__ import annotations

import importlib
import inspect
import pkgutil

import pytest

import synapse_mojo
from synapse_mojo import errors

PUBLIC_SUBPACKAGES = sorted(
    info.name
    for info in pkgutil.iter_modules(synapse_mojo.__path__)
    if info.ispkg and not info.name.startswith("_")
)
PACKAGES = ["synapse_mojo", *(f"synapse_mojo.{name}" for name in PUBLIC_SUBPACKAGES)]


def _exports(package: str) -> list[str]:
    module = importlib.import_module(package)
    assert hasattr(module, "__all__"), f"{package} defines no __all__"
    exported = module.__all__
    assert isinstance(exported, list | tuple), f"{package}.__all__ is a {type(exported)}"
    assert all(isinstance(name, str) for name in exported), f"{package}.__all__: not all str"
    return list(exported)


def test_the_public_subpackages_are_found():
    # A guard for the discovery above: if it found nothing, the tests below would prove nothing.
    assert {"search", "router", "stores", "embeddings", "runtime", "serve"} <= set(
        PUBLIC_SUBPACKAGES
    )


@pytest.mark.parametrize("package", PACKAGES)
def test_all_has_no_duplicates(package):
    exported = _exports(package)
    duplicates = sorted({name for name in exported if exported.count(name) > 1})
    assert not duplicates, f"{package}.__all__ lists {duplicates} more than once"


@pytest.mark.parametrize("package", PACKAGES)
def test_all_exports_no_private_names(package):
    private = [n for n in _exports(package) if n.startswith("_") and not n.startswith("__")]
    assert not private, f"{package}.__all__ exports private names {private}"


@pytest.mark.parametrize("package", PACKAGES)
def test_every_exported_name_exists_and_imports(package):
    module = importlib.import_module(package)
    for name in _exports(package):
        assert hasattr(module, name), f"{package}.{name} is in __all__ but does not exist"
    # What `from <package> import *` really gives (lazy __getattr__ modules included).
    namespace: dict[str, object] = {}
    exec(f"from {package} import *", namespace)  # the statement under test
    namespace.pop("__builtins__", None)
    assert sorted(namespace) == sorted(_exports(package))


def test_every_synapse_error_is_exported_at_the_top_level():
    defined = {
        name
        for name, value in vars(errors).items()
        if inspect.isclass(value)
        and issubclass(value, errors.SynapseError)
        and value.__module__ == errors.__name__
    }
    assert "DamagedIndexError" in defined  # the discovery above sees the tree
    missing = sorted(defined - set(synapse_mojo.__all__))
    assert not missing, f"synapse_mojo.__all__ lacks {missing}"
    for name in defined:
        assert getattr(synapse_mojo, name) is getattr(errors, name)


def test_dir_lists_every_top_level_export():
    assert set(synapse_mojo.__all__) <= set(dir(synapse_mojo))
