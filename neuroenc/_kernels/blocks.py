"""Register-blocked dot products shared by the Gram-matrix kernels.

Short-and-wide products (tens to hundreds of rows, thousands of columns) are
where OpenBLAS reaches a fraction of its square-matrix speed; a 4 x 4 block
of rows gives 16 products per 8 loads and LLVM vectorises the loop along the
columns. Inlined into its callers, so their ``fastmath`` flags apply.
"""

from __future__ import annotations

from numba import njit

__all__ = ["add_dots_4x4"]


@njit(inline="always")
def add_dots_4x4(x0, x1, x2, x3, y0, y1, y2, y3, n, block):
    """``block[i, j] += x_i[:n] @ y_j[:n]`` for the rows ``x0..x3`` and ``y0..y3``.

    Rows are 1-D views indexed from 0, so numba emits no negative-index
    wraparound and the loop vectorises.
    """
    s00 = s01 = s02 = s03 = 0.0
    s10 = s11 = s12 = s13 = 0.0
    s20 = s21 = s22 = s23 = 0.0
    s30 = s31 = s32 = s33 = 0.0
    for t in range(n):
        u = x0[t]
        s00 += u * y0[t]
        s01 += u * y1[t]
        s02 += u * y2[t]
        s03 += u * y3[t]
        u = x1[t]
        s10 += u * y0[t]
        s11 += u * y1[t]
        s12 += u * y2[t]
        s13 += u * y3[t]
        u = x2[t]
        s20 += u * y0[t]
        s21 += u * y1[t]
        s22 += u * y2[t]
        s23 += u * y3[t]
        u = x3[t]
        s30 += u * y0[t]
        s31 += u * y1[t]
        s32 += u * y2[t]
        s33 += u * y3[t]
    block[0, 0] += s00
    block[0, 1] += s01
    block[0, 2] += s02
    block[0, 3] += s03
    block[1, 0] += s10
    block[1, 1] += s11
    block[1, 2] += s12
    block[1, 3] += s13
    block[2, 0] += s20
    block[2, 1] += s21
    block[2, 2] += s22
    block[2, 3] += s23
    block[3, 0] += s30
    block[3, 1] += s31
    block[3, 2] += s32
    block[3, 3] += s33
