"""Runtime layer: kernel loading, the Mojo/Python adapter, metrics."""

from .adapter import (
    FEATURE_KERNELS,
    FeatureRuntime,
    Outcome,
    Runtime,
    get_runtime,
    register_self_check,
    set_runtime,
)
from .kernel_types import KernelModule, MessageRouterKernel, PatternSearchKernel
from .kernels import Compiler, KernelHandle, find_compiler, load_kernel
from .metrics import prometheus_text

__all__ = [
    "FEATURE_KERNELS",
    "Compiler",
    "FeatureRuntime",
    "KernelHandle",
    "KernelModule",
    "MessageRouterKernel",
    "Outcome",
    "PatternSearchKernel",
    "Runtime",
    "find_compiler",
    "get_runtime",
    "load_kernel",
    "prometheus_text",
    "register_self_check",
    "set_runtime",
]
