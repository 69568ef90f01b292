"""Numba-compiled kernels: the only place neuroenc holds numba code.

Conventions (every kernel module here follows them):

- A kernel is ``@njit(cache=True, nogil=True)`` and works *serially* on a
  slice ``[start, stop)`` of a batch, writing into a preallocated output.
  Parallelism comes from :func:`neuroenc._kernels.parallel.run_chunks`,
  which calls the kernel on contiguous chunks from a thread pool (numba
  releases the GIL) while BLAS/LAPACK are limited to one thread each, which
  is much faster than letting OpenBLAS thread tiny matrices.
- Kernels are compiled on first call and cached on disk (``cache=True``);
  importing ``neuroenc`` or ``neuroenc.riemann`` compiles nothing.
- Each kernel has a numpy-level wrapper (validation, allocation, chunking)
  in the same module, and a test against a plain numpy reference.
"""
