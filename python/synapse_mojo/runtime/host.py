"""Facts about the host the runtime reports: whether it runs under user-mode emulation."""

from __future__ import annotations

import os
import platform


def is_emulated() -> bool:
    """True under qemu user-mode emulation (its timings say nothing about the hardware).

    qemu-user shows the guest only its own mappings, but /proc/cpuinfo is the host's: an
    aarch64 process on a CPU that reports x86 fields is emulated (and vice versa).
    ``SYNAPSE_EMULATED`` set to anything non-empty says so explicitly.
    """
    if os.environ.get("SYNAPSE_EMULATED"):
        return True
    machine = platform.machine().lower()
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as f:
            cpuinfo = f.read()
    except OSError:
        return False
    x86_host = "vendor_id" in cpuinfo or "GenuineIntel" in cpuinfo or "AuthenticAMD" in cpuinfo
    arm_host = "CPU implementer" in cpuinfo
    if machine in ("aarch64", "arm64") and x86_host:
        return True
    return machine in ("x86_64", "amd64") and arm_host and not x86_host
