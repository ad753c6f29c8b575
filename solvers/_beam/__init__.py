"""The beam solver's kernels (:mod:`solvers.beam`), split by concern; the relaxation comes from :mod:`solvers._core`."""
