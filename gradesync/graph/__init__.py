"""The one GraphClient all of gradesync's Graph traffic goes through.

``GraphClient`` (retry, paging, ``$batch``, rate limit), its value types, the pure retry
arithmetic, the two error-mapping functions and tolerant OData readers.
"""

from gradesync.errors import GraphAuthError
from gradesync.graph.client import (
    MAX_BATCH,
    Gate,
    GraphClient,
    GraphStats,
    PagedResults,
    SubRequest,
    SubResponse,
)
from gradesync.graph.errors import HeldBack, map_graph_error, map_transport_error
from gradesync.graph.odata import (
    is_points_outcome,
    odata_type,
    points_of,
    points_outcomes,
    published_points_of,
)
from gradesync.graph.ratelimit import RateLimit, RateLimiter
from gradesync.graph.retry import RetryPolicy, backoff, next_wait, parse_retry_after

__all__ = [
    "MAX_BATCH",
    "Gate",
    "GraphAuthError",
    "GraphClient",
    "GraphStats",
    "HeldBack",
    "PagedResults",
    "RateLimit",
    "RateLimiter",
    "RetryPolicy",
    "SubRequest",
    "SubResponse",
    "backoff",
    "is_points_outcome",
    "map_graph_error",
    "map_transport_error",
    "next_wait",
    "odata_type",
    "parse_retry_after",
    "points_of",
    "points_outcomes",
    "published_points_of",
]
