"""Bounded top-k selection with a deterministic order.

Order: higher score first; equal scores by lower row index first (insertion order). Every
backend of the search (Mojo, NumPy, pure Python) uses this order so that they return the same
ids, including on exact ties.

```mojo
var top = TopK(10)
top.push(0.9, 3)
top.push(0.9, 1)     # ties: row 1 ranks before row 3
var n = top.write_sorted(out_scores, out_rows)   # best first
```
"""

from kernel_support.abi import F32Ptr, I64Ptr


@always_inline
def _worse(s_a: Float32, i_a: Int, s_b: Float32, i_b: Int) -> Bool:
    """True when candidate a ranks strictly below candidate b."""
    return s_a < s_b or (s_a == s_b and i_a > i_b)


struct TopK(Movable):
    """A min-heap of at most `k` (score, row) pairs whose root is the worst one kept."""

    var scores: List[Float32]
    var rows: List[Int]
    var size: Int
    var k: Int

    def __init__(out self, k: Int):
        self.k = k
        self.size = 0
        # At least one slot, so that reading the root is always in bounds (k = 0 keeps none).
        self.scores = List[Float32](length=max(k, 1), fill=0)
        self.rows = List[Int](length=max(k, 1), fill=0)

    @always_inline
    def full(self) -> Bool:
        return self.size >= self.k

    @always_inline
    def worst_score(self) -> Float32:
        """Score of the worst kept candidate (valid when `size > 0`)."""
        return self.scores.unsafe_ptr()[unsafe_offset=0]

    @always_inline
    def accepts_in_order(self, score: Float32) -> Bool:
        """Fast admission test for a scan that visits rows in increasing order.

        A later row with a score equal to the worst kept one ranks below it, so only a strictly
        greater score can enter a full heap.
        """
        return self.size < self.k or score > self.scores.unsafe_ptr()[unsafe_offset=0]

    @always_inline
    def accepts(self, score: Float32) -> Bool:
        """Admission test for a scan in any row order: a score equal to the worst kept one
        may still enter (a lower row wins the tie), so `push` decides."""
        return self.size < self.k or score >= self.scores.unsafe_ptr()[unsafe_offset=0]

    def push(mut self, score: Float32, row: Int):
        """Offers a candidate; keeps it if it ranks among the best `k` seen so far."""
        var sp = self.scores.unsafe_ptr()
        var rp = self.rows.unsafe_ptr()
        if self.k == 0:
            return
        if self.size < self.k:
            var pos = self.size
            self.size += 1
            # Sift up: the parent must stay worse than (or equal to) its children.
            while pos > 0:
                var parent = (pos - 1) // 2
                if _worse(score, row, sp[unsafe_offset=parent], rp[unsafe_offset=parent]):
                    sp[unsafe_offset=pos] = sp[unsafe_offset=parent]
                    rp[unsafe_offset=pos] = rp[unsafe_offset=parent]
                    pos = parent
                else:
                    break
            sp[unsafe_offset=pos] = score
            rp[unsafe_offset=pos] = row
            return
        if not _worse(sp[unsafe_offset=0], rp[unsafe_offset=0], score, row):
            return
        self._replace_root(score, row)

    def _replace_root(mut self, score: Float32, row: Int):
        var sp = self.scores.unsafe_ptr()
        var rp = self.rows.unsafe_ptr()
        var pos = 0
        var n = self.size
        while True:
            var left = 2 * pos + 1
            if left >= n:
                break
            var child = left
            var right = left + 1
            if right < n and _worse(
                sp[unsafe_offset=right], rp[unsafe_offset=right], sp[unsafe_offset=left], rp[unsafe_offset=left]
            ):
                child = right
            if _worse(sp[unsafe_offset=child], rp[unsafe_offset=child], score, row):
                sp[unsafe_offset=pos] = sp[unsafe_offset=child]
                rp[unsafe_offset=pos] = rp[unsafe_offset=child]
                pos = child
            else:
                break
        sp[unsafe_offset=pos] = score
        rp[unsafe_offset=pos] = row

    def merge_from(mut self, other: TopK):
        for i in range(other.size):
            self.push(other.scores[i], other.rows[i])

    def write_sorted(
        mut self,
        out_scores: F32Ptr,
        out_rows: I64Ptr,
    ) -> Int:
        """Empties the heap into the outputs, best first; returns the number written."""
        var sp = self.scores.unsafe_ptr()
        var rp = self.rows.unsafe_ptr()
        var count = self.size
        # Pop the worst repeatedly and fill from the back.
        var pos = count - 1
        while self.size > 0:
            out_scores.unsafe_store(pos, sp[unsafe_offset=0])
            out_rows.unsafe_store(pos, Int64(rp[unsafe_offset=0]))
            pos -= 1
            self.size -= 1
            if self.size > 0:
                var last_score = sp[unsafe_offset=self.size]
                var last_row = rp[unsafe_offset=self.size]
                self._replace_root(last_score, last_row)
        return count
