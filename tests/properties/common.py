"""Shared hypothesis settings of the property suite.

Every property either computes the right result (equal to a reference: Keras's grouped
`Conv2D`, a NumPy statement, an invariant of the schedule) or raises the documented
ValueError/TypeError naming the argument; an exception of any other type, or an error raised
deep inside the backend, fails the property. The examples are derandomized (the same cases on
every run, no flakiness) and small (tiny shapes), and `max_examples` bounds each test; the
numbers are listed in docs/guarantees.md.
"""

from __future__ import annotations

from hypothesis import HealthCheck, settings


def cases(max_examples: int) -> settings:
    """Settings of one property: at most `max_examples` generated cases, no deadline (a loaded
    CI machine), derandomized."""
    return settings(
        max_examples=max_examples,
        deadline=None,
        derandomize=True,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
        print_blob=True,
    )
