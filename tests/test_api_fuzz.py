"""The REST API against its own OpenAPI document, with generated requests (schemathesis).

Every operation of ``/api/v1/_openapi`` is called with bounded numbers of generated parameters
and bodies, valid and invalid, by an admin and by a sales rep (whose record rules hide and
refuse records). No answer may be a 5xx, and no error may carry a stack trace, a file path or
database driver text.
"""

from __future__ import annotations

import os
import re
from typing import Any

import schemathesis
from flask import Flask
from hypothesis import HealthCheck, given, settings
from schemathesis import GenerationMode

from crm_core.testing.plugin import PASSWORD, ROLE_USERS

#: Generated requests per operation and role (CRM_FUZZ_EXAMPLES raises it for a longer run).
EXAMPLES = int(os.environ.get("CRM_FUZZ_EXAMPLES", "12"))
ROLES = ("Admin", "Sales Rep")
LEAK = re.compile(
    r"Traceback \(most recent call last\)|File \"/|sqlalchemy\.|psycopg2\.|pymysql\.|sqlite3\."
    r"|Background on this error|\(Background|site-packages",
)


def _token(app: Flask, role: str) -> str:
    client = app.test_client()
    answer = client.post(
        "/api/v1/security/login",
        json={"username": ROLE_USERS[role], "password": PASSWORD, "provider": "db"},
    )
    assert answer.status_code == 200, answer.get_data(as_text=True)
    return str(answer.get_json()["access_token"])


def _schema(app: Flask, token: str) -> Any:
    document = app.test_client().get(
        "/api/v1/_openapi", headers={"Authorization": f"Bearer {token}"}
    )
    assert document.status_code == 200
    return schemathesis.openapi.from_dict(document.get_json())


def _check(app: Flask, case: Any, tokens: dict[str, str], problems: list[str]) -> None:
    for role, token in tokens.items():
        response = case.call(app=app, headers={"Authorization": f"Bearer {token}"})
        body, where = response.text, f"{role}: {case.method} {case.formatted_path}"
        if response.status_code >= 500:
            problems.append(f"{where} -> {response.status_code}: {body[:300]}")
        elif LEAK.search(body):
            problems.append(f"{where} leaks: {body[:300]}")


def test_no_server_errors_and_no_leaks(app: Flask) -> None:
    tokens = {role: _token(app, role) for role in ROLES}
    schema = _schema(app, tokens["Admin"])
    problems: list[str] = []
    operations = 0
    for result in schema.get_all_operations():
        operation = result.ok()
        operations += 1
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):

            @given(case=operation.as_strategy(generation_mode=mode))
            @settings(
                max_examples=EXAMPLES,
                deadline=None,
                derandomize=True,
                database=None,
                suppress_health_check=list(HealthCheck),
            )
            def run(case: Any) -> None:
                _check(app, case, tokens, problems)

            run()
    print(f"fuzz: {operations} operations x {len(ROLES)} roles, {len(problems)} problems")
    assert operations >= 20
    assert not problems, "\n".join(problems[:20])
