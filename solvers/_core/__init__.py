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
  prices) improved by deflected subgradient steps;
* :mod:`solvers._core.knapsack` — one type's slots under its PV cap and own gap,
  valued by prices per slot;
* :mod:`solvers._core.split` — the split relaxation: the DP and one knapsack per
  capped type, linked by prices on "a type-t card at slot s".

The relaxation moves "each card once", the share rows and the count rows into
the objective with multipliers and keeps dispersion exact. The plain
relaxation's bound is weak where a share cap admits only a few cards: a price on
the share row then pays for fractions of a card. Keeping the cap as an integral
knapsack (PV in units: weights rounded down, capacities up) closes that gap,
either as a resource of the DP itself (:func:`~solvers._core.dp.backward_dp`
with :class:`~solvers._core.resources.Resources`; exact but its state space
grows with the product of the tracked caps) or, cheaper, per type in the split
relaxation, which :mod:`solvers.bnb` uses.

Both solvers also share a local search on plans (the beam on its best plans, bnb on its first plan
and where its search pauses):

* :mod:`solvers._core.instance` — the arrays it reads (:class:`~solvers._core.instance.BeamInput`)
  and the rule check of a plan's types per slot;
* :mod:`solvers._core.assign` — each type's cards matched to its slots (Hungarian method), with
  dual prices that bound other slot sets;
* :mod:`solvers._core.local` — first-improvement moves of a type's slots, each valued exactly by
  re-matching.

The relaxation's kernels are tested against a plain-Python reference
(``tests/test_core_engine.py``); the local search's in ``tests/test_beam_kernels.py`` and
``tests/test_beam_local_search.py``.
"""
