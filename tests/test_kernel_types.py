"""The typed surface of the kernel modules (runtime/kernel_types.py) against the real kernels:
each protocol names exactly the functions its built module exports."""

from __future__ import annotations

from typing import Protocol

import pytest

from synapse_mojo.runtime.kernel_types import KERNEL_TYPES, KernelModule
from synapse_mojo.runtime.kernels import KERNEL_ABI


def _protocol_members(protocol: type) -> set[str]:
    return {
        name
        for cls in protocol.__mro__
        if cls not in (Protocol, object)
        for name in vars(cls)
        if not name.startswith("_")
    }


def _exports(module: object) -> set[str]:
    return {
        name for name in dir(module) if not name.startswith("_") and callable(getattr(module, name))
    }


def test_every_kernel_has_a_protocol():
    assert set(KERNEL_TYPES) == set(KERNEL_ABI)
    for protocol in KERNEL_TYPES.values():
        assert KernelModule in protocol.__mro__


@pytest.mark.parametrize("name", sorted(KERNEL_TYPES))
def test_protocol_names_exactly_the_exports(name, request):
    fixture = {"pattern_search": "search_kernel", "message_router": "router_kernel"}[name]
    module = request.getfixturevalue(fixture)
    members = _protocol_members(KERNEL_TYPES[name])
    exports = _exports(module)
    assert members == exports, (
        f"{name}: missing from the protocol {sorted(exports - members)}, "
        f"not exported by the kernel {sorted(members - exports)}"
    )
    assert module.kernel_info()["abi_version"] == KERNEL_ABI[name]
