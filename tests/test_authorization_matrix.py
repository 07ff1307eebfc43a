"""The authorization matrix of the core: every role on every screen and API that shows
customers, contacts and follow-ups, for its own records, a teammate's, another team's and the
shared pool's (see crm_core.testing.matrix). Run with ``-s`` to see the figures."""

from __future__ import annotations

import pytest
from flask import Flask

from crm_core.testing import matrix
from crm_core.testing.matrix import MatrixError, Scope, run_matrix


def test_authorization_matrix(app: Flask) -> None:
    report = run_matrix(app)
    print("\n" + report.summary() + "\n" + report.table())
    assert len(report.roles) == 8 and report.checks > 1000
    assert {"Customer", "Contact", "Activity"} <= set(report.models)
    if not report.ok:
        pytest.fail(report.failures(), pytrace=False)


def test_the_matrix_reports_records_a_role_should_not_see(
    app: Flask, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Told that sales reps may not read contacts at all, the matrix finds the contacts the
    screens show them (their own customer's and the pool's) and names each one."""
    narrow = matrix.Actor.scope

    def no_contacts(self: matrix.Actor, model: str) -> Scope:
        return Scope("none", "none", False) if model == "Contact" else narrow(self, model)

    monkeypatch.setattr(matrix.Actor, "scope", no_contacts)
    report = run_matrix(app, roles=["Sales Rep"])
    assert report.leaks
    assert all("contact" in f"{p.endpoint} {p.op} {p.record}".lower() for p in report.leaks)
    # Every screen that lists contacts or offers them is caught: both APIs' lists, the list
    # screen, show and edit by id, and the follow-up form's contact picker.
    caught = {(p.endpoint.split()[0], p.op) for p in report.leaks}
    assert {
        ("ContactApi", "list"),
        ("ContactApi", "list (cursor)"),
        ("ContactApi", "item"),
        ("ContactView", "list"),
        ("ContactView", "show"),
        ("ContactView", "edit"),
        ("ActivityView", "add picker contact"),
    } <= caught
    assert {p.record.split()[0] for p in report.leaks if "#" in p.record} <= {"own", "pool"}


def test_a_ruled_model_without_a_factory_stops_the_matrix(
    app: Flask, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delitem(matrix.FACTORIES, "Activity")
    with pytest.raises(MatrixError, match="no factory for the ruled model.* Activity"):
        run_matrix(app, roles=["Sales Rep"])
