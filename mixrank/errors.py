"""mixrank's exception hierarchy: every error the library raises on purpose.

All input errors are ``ValueError`` subclasses, so code that already catches
``ValueError`` keeps working; catch :class:`MixrankError` to catch only ours.
"""

__all__ = [
    "MixrankError",
    "ProblemError",
    "InstanceFileError",
    "SolverError",
    "CheckpointError",
    "WorkerLostError",
    "SessionError",
]


class MixrankError(Exception):
    """Base class of every error mixrank raises on purpose."""


class ProblemError(MixrankError, ValueError):
    """A problem field (or a plan) is not what it must be; the message names the field."""


class InstanceFileError(ProblemError):
    """An instance file is malformed, invalid or written by a newer mixrank."""


class SolverError(MixrankError, ValueError):
    """An unknown solver, an unknown option, or a bad option value."""


class CheckpointError(MixrankError, ValueError):
    """A model checkpoint is missing, corrupt or of an unknown format."""


class WorkerLostError(MixrankError, RuntimeError):
    """Work lost with its worker (a Ray worker that died on every try); the message names what was lost."""


class SessionError(ProblemError):
    """Feedback a :class:`~mixrank.MixSession` cannot take: a slot committed twice, a card not planned, a length mismatch."""
