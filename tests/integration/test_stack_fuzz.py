"""Schema-driven fuzzing of every endpoint the stack serves (schemathesis).

The stack's /openapi.json carries the answers' schemas (stack/schemas.py,
from the v1.16 API); generated requests, valid and invalid, must never get a
5xx, an undocumented status code or content type, or a body that violates
its schema. A user of its own (testuser) takes the fuzzed file operations
and job submissions, so the other tests' users are untouched.
"""

from __future__ import annotations

import os

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
)

from firecrest_testbuild.harness.environment import Environment
from tests.integration.api import Api

pytestmark = pytest.mark.integration

FUZZ_USER = "testuser"
EXAMPLES_PER_OPERATION = int(os.environ.get("FUZZ_EXAMPLES", "10"))
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]


def fuzz(operation, api: Api) -> None:
    """Hypothesis-driven requests to one operation, each answer validated."""

    @given(case=operation.as_strategy())
    @settings(
        max_examples=EXAMPLES_PER_OPERATION,
        deadline=None,
        suppress_health_check=list(HealthCheck),
        database=None,
    )
    def run(case) -> None:
        headers = {"Authorization": f"Bearer {api.token}"}
        if case.headers and "X-Machine-Name" in case.headers:
            # Mostly the real machine, so requests reach the cluster; unknown
            # machines are covered by the utilities tests.
            headers["X-Machine-Name"] = api.machine
        case.call_and_validate(base_url=api.url, headers=headers, checks=CHECKS, timeout=60)

    run()


def test_every_answer_is_documented_and_never_a_server_error(environment: Environment):
    # The pytest plugin's lazy schemas do not run on pytest 9, so the
    # operations are driven one by one and the failures gathered.
    api = Api.for_user(environment, FUZZ_USER)  # its token is renewed before it expires
    schema = schemathesis.openapi.from_url(f"{api.url}/openapi.json")
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) == 51  # every operation of the six services
    failures = {}
    for operation in operations:
        try:
            fuzz(operation, api)
        except Exception as error:  # a failed check, with schemathesis's reproduction
            failures[operation.label] = str(error)[:2000]
    assert not failures, "\n\n".join(f"{label}:\n{text}" for label, text in failures.items())
