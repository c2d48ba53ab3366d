"""What the kernel modules and the Python layer agree on: pointer types and fault codes.

The Python side passes raw addresses (integers) of buffers it owns; the kernels view them
through these pointer types. Every kernel function that takes a `fault` argument checks it with
`check_fault` before touching anything, and implements `FAULT_WRONG` itself.

```mojo
from kernel_support.abi import F32Ptr, FAULT_WRONG, check_fault

check_fault(fault, "pattern_search")     # raises for FAULT_RAISE
var rows = F32Ptr(unsafe_from_address=addr)
```
"""

# ===----------------------------------------------------------------------=== #
# Pointer types
# ===----------------------------------------------------------------------=== #

# The memory behind these pointers is owned by the caller (a NumPy array on the Python side, a
# List in the standalone programs), never by the kernel; `MutAnyOrigin` keeps every value in
# scope alive while such a pointer is in use.
comptime F32Ptr = Pointer[Float32, MutAnyOrigin]
comptime I64Ptr = Pointer[Int64, MutAnyOrigin]
comptime U64Ptr = Pointer[UInt64, MutAnyOrigin]
comptime U8Ptr = Pointer[UInt8, MutAnyOrigin]
comptime I8Ptr = Pointer[Int8, MutAnyOrigin]

# A view of caller-owned memory kept in a struct field (the router's `SlotQueue` over its
# state block): the compiler refuses `MutAnyOrigin` there, so the origin is untracked and the
# caller keeps the block alive while the view is in use.
comptime I64UntrackedPtr = Pointer[Int64, MutUntrackedOrigin]


# ===----------------------------------------------------------------------=== #
# Fault injection (the runtime's convention, documented in the README)
# ===----------------------------------------------------------------------=== #

comptime FAULT_NONE = 0
# Raise from inside the kernel before anything changes.
comptime FAULT_RAISE = 1
# Return wrong results (search: the least similar rows; router: lowest priority first).
comptime FAULT_WRONG = 2


@always_inline
def check_fault(fault: Int, kernel: StaticString) raises:
    """Raises the injected error when `fault` is `FAULT_RAISE`; `kernel` names the module."""
    if fault == FAULT_RAISE:
        raise Error("injected fault: ", kernel, " kernel raised on purpose")
