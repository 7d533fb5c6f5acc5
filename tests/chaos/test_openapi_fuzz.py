"""The HTTP API driven from its own OpenAPI schema (``/openapi.json``) by
schemathesis, with data that fits each operation and data that does not,
against a live stack: a 4xx at worst, never a 5xx."""

from __future__ import annotations

from collections import Counter

import pytest
from hypothesis import given, settings
from hypothesis.errors import Unsatisfiable

from tests.chaos.live import FUZZ, Target

schemathesis = pytest.importorskip("schemathesis")  # a dev dependency; see pyproject
from schemathesis import GenerationMode  # noqa: E402
from schemathesis.checks import not_a_server_error  # noqa: E402
from schemathesis.core.result import Ok  # noqa: E402

pytestmark = [pytest.mark.slow, pytest.mark.timeout(600)]


def test_the_http_api_never_answers_5xx(target: Target) -> None:
    """Every operation of ``/openapi.json``, with data that fits its schema
    and data that does not: a 4xx at worst, never a 5xx."""
    schema = schemathesis.openapi.from_url(target.stack.url + "/openapi.json")
    operations = [r.ok() for r in schema.get_all_operations() if isinstance(r, Ok)]
    assert len(operations) >= 10
    headers = {"Authorization": f"Bearer {target.token}"}
    calls: Counter[int] = Counter()
    for operation in operations:
        if operation.path == "/api/auth/logout":
            continue  # would sign the fuzzer out: everything after it a mere 401
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):

            @settings(FUZZ, max_examples=20)
            @given(case=operation.as_strategy(generation_mode=mode))
            def call(case: schemathesis.Case) -> None:
                response = case.call_and_validate(
                    base_url=target.stack.url,
                    headers=headers,
                    checks=[not_a_server_error],
                    timeout=30,
                )
                calls[response.status_code] += 1

            try:
                call()
            except Unsatisfiable:
                assert mode is GenerationMode.NEGATIVE  # nothing in it can be made invalid
    print(
        f"\nschemathesis: {len(operations)} operations, {sum(calls.values())} calls, "
        f"statuses {dict(sorted(calls.items()))}"
    )
    assert not [status for status in calls if status >= 500]
