"""The relaxation engine the exact solver ranks and prunes by (and the beam may share).

One relaxation, split by concern:

* :mod:`solvers._core.gaps` — the gap state machine: the reachable distance
  states of the dispersion rules and their transitions;
* :mod:`solvers._core.resources` — share caps turned into integer resources
  (PV in units, weights rounded down and capacities up, so the relaxation stays
  valid in real arithmetic);
* :mod:`solvers._core.dp` — the longest path over (slot, gap state, resource
  left) of the reduced values, and the path it takes;
* :mod:`solvers._core.prices` — Lagrange multipliers (card, share and count
  prices) improved by deflected subgradient steps.

The relaxation moves "each card once", the share rows and the count rows into
the objective with multipliers and keeps dispersion exact. The plain
relaxation's bound is weak where a share cap admits only a few cards: a price on
the share row then pays for fractions of a card. Tracking a capped type's PV as
a resource in the DP keeps that knapsack integral (up to the rounding of PV into
units), which is what closes the gap; the price on the exact row stays on top.
"""
