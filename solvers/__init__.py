"""mixrank's solvers, one module per solver, each with one public entry.

Use them through :func:`mixrank.solve` (``solver="greedy" | "beam" | "bnb" | "cpsat"``);
the modules here are imported only when their solver is asked for.
"""

import mixrank._kernel_cache  # noqa: F401,E402  (Numba's cache keyed by each kernel's import closure)
