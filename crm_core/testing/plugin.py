"""pytest fixtures for the CRM and its plugins (entry point ``pytest11``).

Fixtures: ``crm_backend`` (the database backend, parametrised over every reachable one),
``crm_plugins`` (which plugins ``crm_app`` loads; override it in a ``conftest.py``), ``crm_app`` (a
migrated app per backend, for the session), ``app`` (the same app, cleaned after each test),
``login`` (a test client logged in with a role), ``admin_client``, ``rep_client``.

Every test of the ``app`` fixture ends with the audit check (:mod:`crm_core.testing.audit`):
each committed write of a business record must have left exactly one audit entry with the
right diff. A test that tampers with the audit log on purpose opts out with
``@pytest.mark.crm_audit_unchecked``.

Backends: SQLite always; PostgreSQL and MariaDB when their servers answer. ``CRM_TEST_BACKENDS``
(e.g. ``sqlite``) restricts the set; with ``CRM_TEST_REQUIRE_ALL=1`` (as in CI) an unreachable
server fails the run instead of being skipped.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from flask_appbuilder import Model
from sqlalchemy import delete, inspect, select

from ..app import create_app
from ..cli.db import sync_picklists, upgrade_all
from ..cli.users import ensure_user
from ..db import session
from ..plugins.models import PluginState
from ..workflow.automation import rulecache
from .audit import AuditCheck
from .databases import BACKENDS, backend_url, drop, reachable

PASSWORD = "Test-pass-1"
ROLE_USERS = {
    "Admin": "t_admin",
    "Sales Manager": "t_manager",
    "Sales Rep": "t_rep",
    "Service Agent": "t_agent",
    "Marketing": "t_marketing",
    "Analyst": "t_analyst",
    "Read-only": "t_reader",
    "Integration": "t_integration",
}
KEEP_TABLES = (
    "ab_permission",
    "ab_view_menu",
    "ab_permission_view",
    "ab_role",
    "ab_permission_view_role",
    "alembic_version",
    "crm_plugin_state",
    "crm_record_rule",
    "crm_scheduler_jobs",
)


def _backends() -> list[str]:
    wanted = os.environ.get("CRM_TEST_BACKENDS")
    return [b.strip() for b in wanted.split(",")] if wanted else list(BACKENDS)


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "crm_audit_unchecked: skip the end-of-test audit log check of the app fixture"
    )


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "crm_backend" in metafunc.fixturenames:
        metafunc.parametrize("crm_backend", _backends(), scope="session", indirect=True)


@pytest.fixture(scope="session")
def crm_backend(request: pytest.FixtureRequest) -> str:
    """The database backend of this test run: sqlite, postgresql or mysql (MariaDB)."""
    backend: str = request.param
    if not reachable(backend):
        message = f"{backend} is not reachable"
        if os.environ.get("CRM_TEST_REQUIRE_ALL") == "1":
            pytest.fail(message + " and CRM_TEST_REQUIRE_ALL=1", pytrace=False)
        pytest.skip(message)
    return backend


def make_test_app(url: str, **overrides: Any) -> Flask:
    """An app on ``url`` configured for tests (no CSRF, no hooks directory)."""
    config = {
        "SQLALCHEMY_DATABASE_URI": url,
        "TESTING": True,
        "WTF_CSRF_ENABLED": False,
        "CRM_HOOKS_DIR": None,
        "SECRET_KEY": "crm-test-secret-key-of-at-least-32-bytes",
        "CRM_FILES_DIR": tempfile.mkdtemp(prefix="crm-files-"),
    }
    config.update(overrides)
    return create_app(config)


@pytest.fixture(scope="session")
def crm_database_url(crm_backend: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A fresh database on the backend, dropped at the end of the run."""
    url = backend_url(crm_backend, f"crm_test_{os.getpid()}", tmp_path_factory.mktemp("db"))
    yield url
    drop(url)


@pytest.fixture(scope="session")
def crm_plugins() -> str | None:
    """The plugins ``crm_app`` loads, as a ``CRM_PLUGINS`` comma list (``""``: none).

    ``None`` (the default) loads every pip-installed plugin, or those the ``CRM_PLUGINS``
    environment variable names. Override the fixture in a ``conftest.py``: a plugin's tests
    return its name (and its dependencies'), so other plugins in the environment stay out.
    """
    return None


@pytest.fixture(scope="session")
def crm_app(crm_database_url: str, crm_plugins: str | None) -> Iterator[Flask]:
    """A migrated app with one user per default role (password ``Test-pass-1``)."""
    overrides = {} if crm_plugins is None else {"CRM_PLUGINS": crm_plugins}
    app = make_test_app(crm_database_url, **overrides)
    with app.app_context():
        upgrade_all()
        for role, username in ROLE_USERS.items():
            ensure_user(username, PASSWORD, f"{username}@example.cn", role, first=username)
        app.config["CRM_TEST_STATES"] = [
            (r.name, r.state) for r in session().scalars(select(PluginState))
        ]
        _empty_audit_log()  # setting up is not what the first test wrote
        session().remove() if hasattr(session(), "remove") else session().close()  # type: ignore[attr-defined]
    yield app
    with app.app_context():
        app.extensions["crm_db"].engine.dispose()


def _empty_audit_log() -> None:
    """Delete every audit entry (with Core: the ORM refuses) and commit."""
    session().execute(Model.metadata.tables["crm_audit_log"].delete())
    session().commit()


def reset_database(app: Flask) -> None:
    """Delete every row the test wrote, keeping permissions, roles, role users and states."""
    with app.app_context():
        s = session()
        s.rollback()
        keep_users = list(ROLE_USERS.values())
        # The metadata is the process's: it also holds tables of plugins that another app in
        # this process imported and this database never created.
        existing = set(inspect(s.get_bind()).get_table_names())
        for table in reversed(Model.metadata.sorted_tables):
            if table.name.startswith(KEEP_TABLES) or table.name in ("ab_user", "ab_user_role"):
                continue
            if table.name not in existing:
                continue
            for column in table.columns:  # a tree (teams) must let go of itself first
                if any(fk.column.table is table for fk in column.foreign_keys):
                    s.execute(table.update().values({column.name: None}))
            s.execute(table.delete())
        user_table = Model.metadata.tables["ab_user"]
        role_table = Model.metadata.tables["ab_user_role"]
        others = select(user_table.c.id).where(user_table.c.username.not_in(keep_users))
        s.execute(delete(role_table).where(role_table.c.user_id.in_(others)))
        s.execute(user_table.update().values(changed_by_fk=None, created_by_fk=None))
        s.execute(delete(user_table).where(user_table.c.username.not_in(keep_users)))
        s.execute(delete(PluginState))
        for name, state in app.config.get("CRM_TEST_STATES", []):
            s.add(PluginState(name=name, state=state))
        s.commit()
        sync_picklists()  # the modules' default picklists, as `crm upgrade` leaves them
        # Restoring states and picklists is configuration, audited: the next test starts with
        # an empty audit log all the same.
        _empty_audit_log()
        app.extensions["crm"].runtime_errors.clear()
        rulecache.forget()  # the automation rules just deleted must not run on


@pytest.fixture
def app(crm_app: Flask, request: pytest.FixtureRequest) -> Iterator[Flask]:
    """The session's app, with every row the test wrote removed afterwards, after checking that
    every committed write of a business record left exactly one audit entry with its diff."""
    check = AuditCheck(crm_app)
    check.start()
    try:
        yield crm_app
        check.stop()
        problem = None
        if request.node.get_closest_marker("crm_audit_unchecked") is None:
            problem = check.mismatch()
        if problem:
            pytest.fail(problem, pytrace=False)
    finally:
        check.stop()
        reset_database(crm_app)


def login_client(app: Flask, role_or_username: str, password: str = PASSWORD) -> FlaskClient:
    """A test client logged in as the fixture user of a role (or as a username)."""
    username = ROLE_USERS.get(role_or_username, role_or_username)
    client = app.test_client()
    response = client.post("/login/", data={"username": username, "password": password})
    assert response.status_code == 302, f"login as {username} failed"
    return client


@pytest.fixture
def login(app: Flask):  # type: ignore[no-untyped-def]
    """``login("Sales Rep")`` gives a client logged in with that role."""
    return lambda role: login_client(app, role)


@pytest.fixture
def admin_client(app: Flask) -> FlaskClient:
    return login_client(app, "Admin")


@pytest.fixture
def rep_client(app: Flask) -> FlaskClient:
    return login_client(app, "Sales Rep")


def user_id(app: Flask, role_or_username: str) -> int:
    """The id of a fixture user."""
    username = ROLE_USERS.get(role_or_username, role_or_username)
    with app.app_context():
        user = app.appbuilder.sm.find_user(username=username)  # type: ignore[attr-defined]
        return int(user.id)
