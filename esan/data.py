"""The array schema that ESAN reads — re-exported from :mod:`mixrank.logs`, where it lives.

The schema is the contract between the synthetic feeds, the pipeline and the
model, so it sits on mixrank's ground floor; ``from esan.data import FeedLog``
and ``from esan import FeedLog`` keep working. See :mod:`mixrank.logs` for the
fields and the file format.
"""

from mixrank.logs import (
    BEHAVIOUR_FIELDS,
    CANDIDATE_FIELDS,
    PAGE_FIELDS,
    SCHEMA_VERSION,
    FeedLog,
    InputError,
    LogSchemaError,
    Page,
    Requests,
)

__all__ = [
    "InputError",
    "LogSchemaError",
    "FeedLog",
    "Requests",
    "Page",
    "SCHEMA_VERSION",
    "BEHAVIOUR_FIELDS",
    "PAGE_FIELDS",
    "CANDIDATE_FIELDS",
]
