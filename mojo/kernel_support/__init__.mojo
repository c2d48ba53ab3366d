"""Shared building blocks for the synapse-mojo kernels.

The extension modules in `mojo/` import from this package (`mojo build -I mojo`):

```mojo
from kernel_support.abi import F32Ptr, check_fault
from kernel_support.parallel import parallel_for
from kernel_support.topk import TopK
```
"""
