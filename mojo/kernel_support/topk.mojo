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
        self.scores = List[Float32](length=k, fill=0)
        self.rows = List[Int](length=k, fill=0)

    @always_inline
    def full(self) -> Bool:
        return self.size >= self.k

    @always_inline
    def worst_score(self) -> Float32:
        """Score of the worst kept candidate (valid when `size > 0`)."""
        return self.scores[0]

    @always_inline
    def accepts_in_order(self, score: Float32) -> Bool:
        """Fast admission test for a scan that visits rows in increasing order.

        A later row with a score equal to the worst kept one ranks below it, so only a strictly
        greater score can enter a full heap.
        """
        return self.size < self.k or score > self.scores[0]

    def push(mut self, score: Float32, row: Int):
        """Offers a candidate; keeps it if it ranks among the best `k` seen so far."""
        if self.k == 0:
            return
        if self.size < self.k:
            var pos = self.size
            self.size += 1
            # Sift up: the parent must stay worse than (or equal to) its children.
            while pos > 0:
                var parent = (pos - 1) // 2
                if _worse(score, row, self.scores[parent], self.rows[parent]):
                    self.scores[pos] = self.scores[parent]
                    self.rows[pos] = self.rows[parent]
                    pos = parent
                else:
                    break
            self.scores[pos] = score
            self.rows[pos] = row
            return
        if not _worse(self.scores[0], self.rows[0], score, row):
            return
        self._replace_root(score, row)

    def _replace_root(mut self, score: Float32, row: Int):
        var pos = 0
        var n = self.size
        while True:
            var left = 2 * pos + 1
            if left >= n:
                break
            var child = left
            var right = left + 1
            if right < n and _worse(
                self.scores[right], self.rows[right], self.scores[left], self.rows[left]
            ):
                child = right
            if _worse(self.scores[child], self.rows[child], score, row):
                self.scores[pos] = self.scores[child]
                self.rows[pos] = self.rows[child]
                pos = child
            else:
                break
        self.scores[pos] = score
        self.rows[pos] = row

    def merge_from(mut self, other: TopK):
        for i in range(other.size):
            self.push(other.scores[i], other.rows[i])

    def write_sorted(
        mut self,
        out_scores: F32Ptr,
        out_rows: I64Ptr,
    ) -> Int:
        """Empties the heap into the outputs, best first; returns the number written."""
        var count = self.size
        # Pop the worst repeatedly and fill from the back.
        var pos = count - 1
        while self.size > 0:
            out_scores.unsafe_store(pos, self.scores[0])
            out_rows.unsafe_store(pos, Int64(self.rows[0]))
            pos -= 1
            self.size -= 1
            if self.size > 0:
                var last_score = self.scores[self.size]
                var last_row = self.rows[self.size]
                self._replace_root(last_score, last_row)
        return count
