"""Domain events: written in the user's transaction, delivered after commit, never lost."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from sqlalchemy import func, insert, select

from crm_core.customers.models import Customer
from crm_core.db import session, utcnow
from crm_core.events.dispatch import LEASE, dispatch_backlog, dispatch_pending
from crm_core.events.models import EventDelivery, OutboxEvent
from crm_core.testing.databases import backend_url
from crm_core.testing.plugin import login_client, make_test_app

RECORDER = textwrap.dedent(
    '''
    """Site hook used by the tests: appends every event it receives to a file."""
    import os

    import crm_core

    manifest = crm_core.Manifest(name="recorder", version="1.0", auto_enable=True)


    @crm_core.hookimpl
    def on_event(event):
        with open(os.environ["CRM_RECORDER_FILE"], "a", encoding="utf-8") as fh:
            fh.write(f"{event.id} {event.type} {event.payload.get('id')}\\n")
    '''
)


@pytest.fixture
def recorder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Path, Path]:
    hooks = tmp_path / "hooks"
    hooks.mkdir()
    (hooks / "recorder.py").write_text(RECORDER, encoding="utf-8")
    out = tmp_path / "events.log"
    out.touch()
    monkeypatch.setenv("CRM_RECORDER_FILE", str(out))
    return hooks, out


@pytest.fixture
def events_app(crm_backend: str, tmp_path: Path, recorder: tuple[Path, Path]):  # type: ignore[no-untyped-def]
    from crm_core.cli.db import upgrade_all
    from crm_core.cli.users import ensure_user

    url = backend_url(crm_backend, f"crm_ev_{os.getpid()}", tmp_path)
    app = make_test_app(url, CRM_HOOKS_DIR=str(recorder[0]), CRM_PLUGINS="recorder")
    with app.app_context():
        upgrade_all()
        ensure_user("t_admin", "Test-pass-1", "a@example.cn", "Admin")
    yield app, url
    with app.app_context():
        app.extensions["crm_db"].engine.dispose()


def lines(path: Path) -> list[str]:
    return [line for line in path.read_text(encoding="utf-8").splitlines() if line]


def _app_script(path: Path, url: str, recorder: tuple[Path, Path], head: str, body: str) -> Path:
    """A Python script that runs ``body`` in an app context of the test database, with the
    recorder hook, for a process of its own."""
    lines_of_body = textwrap.indent(textwrap.dedent(body).strip(), "    ")
    path.write_text(
        f"{textwrap.dedent(head).strip()}\n"
        "from crm_core.testing.plugin import make_test_app\n\n"
        f"app = make_test_app({url!r}, CRM_HOOKS_DIR={str(recorder[0])!r}, "
        'CRM_PLUGINS="recorder")\n'
        f"with app.app_context():\n{lines_of_body}\n",
        encoding="utf-8",
    )
    return path


def test_event_is_delivered_after_the_request_commits(events_app, recorder):
    app, _url = events_app
    client = login_client(app, "t_admin")
    response = client.post("/api/v1/customer/", json={"name": "北京中关村软件有限公司"})
    assert response.status_code == 201
    customer_id = response.get_json()["id"]
    assert f"customer.created {customer_id}" in " ".join(lines(recorder[1]))
    with app.app_context():
        pending = session().scalar(
            select(func.count()).select_from(OutboxEvent).where(OutboxEvent.dispatched_at.is_(None))
        )
        assert pending == 0


def test_failed_write_emits_no_event(events_app, recorder):
    app, _url = events_app
    client = login_client(app, "t_admin")
    assert client.post("/api/v1/customer/", json={"name": "甲", "code": "DUP"}).status_code == 201
    before = len(lines(recorder[1]))
    assert client.post("/api/v1/customer/", json={"name": "乙", "code": "DUP"}).status_code == 409
    assert len(lines(recorder[1])) == before
    with app.app_context():
        assert session().scalar(select(func.count()).select_from(OutboxEvent)) == before


def test_killed_between_commit_and_dispatch_loses_no_event(events_app, recorder, tmp_path):
    app, url = events_app
    script = _app_script(
        tmp_path / "writer.py",
        url,
        recorder,
        """
        import os, signal
        from crm_core.customers.models import Customer
        from crm_core.db import session
        """,
        """
        session().add(Customer(name="深圳市前海云图科技有限公司", code="KILL-1"))
        session().commit()
        os.kill(os.getpid(), signal.SIGKILL)  # dies before anything dispatches
        """,
    )
    result = subprocess.run([sys.executable, str(script)], env=os.environ.copy(), check=False)
    assert result.returncode == -signal.SIGKILL
    assert lines(recorder[1]) == []  # nothing was delivered by the dead process
    with app.app_context():
        customer_id = session().scalar(select(Customer.id).where(Customer.code == "KILL-1"))
        assert customer_id is not None
        assert dispatch_pending() == 1
        assert dispatch_pending() == 0  # delivered once, not again
    delivered = lines(recorder[1])
    assert len(delivered) == 1 and delivered[0].endswith(f"customer.created {customer_id}")


def test_failing_handler_is_retried_and_others_still_get_the_event(events_app, recorder, tmp_path):
    app, _url = events_app
    registry = app.extensions["crm"]
    calls: list[int] = []

    class Flaky:
        @staticmethod
        def on_event(event):  # type: ignore[no-untyped-def]
            calls.append(event.id)
            if len(calls) == 1:
                raise RuntimeError("endpoint down")

    from crm_core.hookimpl import hookimpl

    Flaky.on_event = hookimpl(Flaky.on_event)  # type: ignore[method-assign]
    registry.pm.register(Flaky, name="flaky_test")
    registry.owner_of_module["flaky_test"] = "core"
    try:
        client = login_client(app, "t_admin")
        assert client.post("/api/v1/customer/", json={"name": "丙公司"}).status_code == 201
        assert len(lines(recorder[1])) == 1  # the healthy handler was not held up
        assert len(calls) == 1
        with app.app_context():
            delivery = session().scalar(
                select(EventDelivery).where(EventDelivery.handler == "flaky_test")
            )
            assert delivery.status == "pending" and delivery.attempts == 1
            assert "endpoint down" in delivery.last_error
            assert dispatch_pending() == 0  # back-off: not due yet
            delivery.next_attempt_at = delivery.next_attempt_at.replace(year=2000)
            session().commit()
            assert dispatch_pending() == 1
            session().commit()  # end this session's snapshot (MariaDB reads repeatably)
            session().refresh(delivery)
            assert delivery.status == "done" and delivery.attempts == 2
        assert len(calls) == 2 and len(lines(recorder[1])) == 1
    finally:
        registry.pm.unregister(name="flaky_test")


def _backlog(app, n: int) -> list[int]:  # type: ignore[no-untyped-def]
    """``n`` pending ``customer.created`` events written as an import writes them."""
    with app.app_context():
        first = (session().scalar(select(func.max(OutboxEvent.id))) or 0) + 1
        session().execute(
            insert(OutboxEvent.__table__),
            [
                {"type": "customer.created", "payload": {"id": i}, "occurred_at": utcnow()}
                for i in range(first, first + n)
            ],
        )
        session().commit()
        return list(
            session().scalars(
                select(OutboxEvent.id).where(OutboxEvent.id >= first).order_by(OutboxEvent.id)
            )
        )


def test_one_run_of_the_dispatch_job_delivers_a_backlog_of_many_pages(events_app, recorder):
    """An import leaves an event per record: the job drains them all, page after page, and an
    event waiting for its retry does not hold up the ones behind it."""
    app, _url = events_app
    ids = _backlog(app, 2500)
    with app.app_context():
        session().add(
            EventDelivery(
                event_id=ids[0],
                handler="recorder",
                attempts=1,
                status="pending",
                last_error="endpoint down",
                next_attempt_at=utcnow() + LEASE,
            )
        )
        session().commit()
        assert dispatch_backlog(page=1000) == 2499
        pending = (
            session()
            .scalars(select(OutboxEvent.id).where(OutboxEvent.dispatched_at.is_(None)))
            .all()
        )
    delivered = [int(line.split()[0]) for line in lines(recorder[1])]
    assert sorted(delivered) == ids[1:]  # each once, the waiting one not yet
    assert pending == [ids[0]]


def test_two_dispatchers_at_once_deliver_each_event_to_each_handler_once(
    events_app, recorder, tmp_path
):
    app, url = events_app
    ids = _backlog(app, 1500)
    script = _app_script(
        tmp_path / "dispatcher.py",
        url,
        recorder,
        "from crm_core.events.dispatch import dispatch_backlog",
        "print(dispatch_backlog(page=300))",
    )
    dispatchers = [
        subprocess.Popen(
            [sys.executable, str(script)], env=os.environ.copy(), stdout=subprocess.PIPE, text=True
        )
        for _ in range(2)
    ]
    completed = [int(d.communicate(timeout=300)[0].split()[-1]) for d in dispatchers]
    assert all(d.returncode == 0 for d in dispatchers)
    delivered = sorted(int(line.split()[0]) for line in lines(recorder[1]))
    assert delivered == ids  # every event once, whichever dispatcher made it
    with app.app_context():
        assert dispatch_pending() == 0
        left = session().scalar(
            select(func.count()).select_from(OutboxEvent).where(OutboxEvent.dispatched_at.is_(None))
        )
    assert left == 0 and sum(completed) == len(ids)  # each completed by one of them
