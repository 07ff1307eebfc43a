"""The audit trail: one append-only entry per changed business record, from every channel.

(Every test of the ``app`` fixture also runs the shared check of crm_core.testing.audit; these
tests pin down user, channel, operation and the diff of each write path.)
"""

from __future__ import annotations

from datetime import timedelta

import click
import pytest
from click.testing import CliRunner
from flask.cli import ScriptInfo, with_appcontext
from helpers import add_customer
from sqlalchemy import delete, select, update

from crm_core.cli import main
from crm_core.customers.models import Customer
from crm_core.customers.pool import RECLAIM_DAYS
from crm_core.db import session, utcnow
from crm_core.jobs.runner import run_job
from crm_core.security.audit import AuditLog, AuditLogImmutableError
from crm_core.settings.store import set_setting
from crm_core.testing.audit import AuditCheck
from crm_core.testing.plugin import user_id


def _entries(app, pk: int | None = None) -> list[AuditLog]:  # type: ignore[no-untyped-def]
    with app.app_context():
        query = select(AuditLog).order_by(AuditLog.id)
        if pk is not None:
            query = query.where(AuditLog.model == "customer", AuditLog.record_id == pk)
        rows = session().scalars(query).all()
        session().expunge_all()
        return list(rows)


def test_api_create_update_archive_each_leave_one_entry(app, admin_client):
    admin = user_id(app, "Admin")
    created = admin_client.post(
        "/api/v1/customer/", json={"name": "上海浦东华东精密机械有限公司", "code": "AUD-1"}
    )
    assert created.status_code == 201, created.get_json()
    pk = created.get_json()["id"]
    [entry] = _entries(app, pk)
    assert (entry.operation, entry.channel, entry.user_id, entry.username) == (
        "create",
        "api",
        admin,
        "t_admin",
    )
    assert entry.ip == "127.0.0.1"
    assert entry.changes["name"] == [None, "上海浦东华东精密机械有限公司"]
    assert entry.changes["code"] == [None, "AUD-1"]
    assert entry.changes["active"] == [None, True]
    assert "updated_at" not in entry.changes and "version" not in entry.changes

    changed = admin_client.put(
        f"/api/v1/customer/{pk}", json={"city": "上海市", "credit_limit": "50000.00"}
    )
    assert changed.status_code == 200, changed.get_json()
    entries = _entries(app, pk)
    assert len(entries) == 2
    assert entries[1].operation == "update" and entries[1].channel == "api"
    assert entries[1].changes == {"city": [None, "上海市"], "credit_limit": [None, "50000.00"]}

    same = admin_client.put(f"/api/v1/customer/{pk}", json={"city": "上海市"})
    assert same.status_code == 200
    assert len(_entries(app, pk)) == 2, "a write that changes nothing leaves no entry"

    archived = admin_client.delete(f"/api/v1/customer/{pk}")
    assert archived.status_code == 200
    entries = _entries(app, pk)
    assert len(entries) == 3
    assert entries[2].operation == "archive" and entries[2].changes == {"active": [True, False]}
    assert entries[2].user_id == admin


def test_web_form_edit_is_audited_as_web(app, rep_client):
    rep = user_id(app, "Sales Rep")
    added = rep_client.post(
        "/customers/add",
        data={"name": "杭州滨江启明软件有限公司", "kind": "company", "city": "杭州市"},
        follow_redirects=True,
    )
    assert added.status_code == 200
    with app.app_context():
        customer = session().scalar(
            select(Customer).where(Customer.name == "杭州滨江启明软件有限公司")
        )
        pk, code = customer.id, customer.code
    [created] = _entries(app, pk)
    assert (created.operation, created.channel, created.user_id) == ("create", "web", rep)
    assert created.changes["owner_id"] == [None, rep]  # set through the relationship

    rep_client.post(
        f"/customers/edit/{pk}",
        data={
            "name": "杭州滨江启明软件有限公司",
            "kind": "company",
            "code": code,
            "city": "宁波市",
        },
        follow_redirects=True,
    )
    entries = _entries(app, pk)
    assert len(entries) == 2
    edit = entries[1]
    assert (edit.operation, edit.channel, edit.username) == ("update", "web", "t_rep")
    assert edit.changes["city"] == ["杭州市", "宁波市"]


def test_job_writes_are_audited_as_job(app):
    rep = user_id(app, "Sales Rep")
    with app.app_context():
        idle = Customer(
            name="天津滨海宏达物流有限公司", owner_id=rep, created_at=utcnow() - timedelta(days=45)
        )
        session().add(idle)
        set_setting(RECLAIM_DAYS, 30)
        session().commit()
        pk = idle.id
        run = run_job("core.pool_reclaim")
        assert run is not None and run.outcome == "ok"
    created, reclaimed = _entries(app, pk)
    assert created.channel == "system"  # written outside a request, a command or a job
    assert (reclaimed.operation, reclaimed.channel, reclaimed.user_id) == ("update", "job", None)
    assert reclaimed.changes["owner_id"] == [rep, None]
    assert reclaimed.changes["pooled_at"][0] is None and reclaimed.changes["pooled_at"][1]


def test_cli_writes_are_audited_as_cli(app):
    @click.command("audit-test-add")
    @with_appcontext
    def add_customer() -> None:
        session().add(Customer(name="北京海淀中科软件有限公司", code="AUD-CLI"))
        session().commit()

    main.add_command(add_customer)
    try:
        result = CliRunner().invoke(
            main, ["audit-test-add"], obj=ScriptInfo(create_app=lambda: app)
        )
    finally:
        main.commands.pop("audit-test-add", None)
    assert result.exit_code == 0, result.output
    [entry] = _entries(app)
    assert (entry.model, entry.operation, entry.channel, entry.user_id) == (
        "customer",
        "create",
        "cli",
        None,
    )
    assert entry.changes["code"] == [None, "AUD-CLI"]


def test_audit_entries_cannot_be_changed_or_deleted(app):
    with app.app_context():
        session().add(Customer(name="广州天河鼎盛商贸有限公司"))
        session().commit()
        entry = session().scalars(select(AuditLog)).one()
        entry.changes = {}
        with pytest.raises(AuditLogImmutableError):
            session().commit()
        session().rollback()
        session().delete(session().scalars(select(AuditLog)).one())
        with pytest.raises(AuditLogImmutableError):
            session().commit()
        session().rollback()
        with pytest.raises(AuditLogImmutableError):
            session().execute(update(AuditLog).values(username="x"))
        with pytest.raises(AuditLogImmutableError):
            session().execute(delete(AuditLog))
        session().rollback()
        assert (
            session().scalars(select(AuditLog)).one().changes["name"][1]
            == "广州天河鼎盛商贸有限公司"
        )


def test_360_page_shows_the_history(app, admin_client):
    pk = admin_client.post(
        "/api/v1/customer/", json={"name": "苏州工业园区恒通电子有限公司"}
    ).get_json()["id"]
    admin_client.put(f"/api/v1/customer/{pk}", json={"city": "苏州市"})
    page = admin_client.get(f"/customer/{pk}").get_data(as_text=True)
    assert 'id="crm-history"' in page
    history = page.split('id="crm-history"')[1]
    assert "t_admin" in history and "苏州市" in history
    assert "<strong>城市</strong>" in history  # the field's label, in the user's language
    assert "<strong>city</strong>" not in history


def test_admin_searches_the_audit_log_and_a_rep_cannot(app, admin_client, rep_client):
    pk = admin_client.post(
        "/api/v1/customer/", json={"name": "深圳南山云图科技有限公司"}
    ).get_json()["id"]
    listed = admin_client.get(f"/auditlog/list/?_flt_0_record_id={pk}")
    assert listed.status_code == 200
    html = listed.get_data(as_text=True)
    assert "t_admin" in html and "customer" in html
    entry_id = _entries(app, pk)[0].id
    shown = admin_client.get(f"/auditlog/show/{entry_id}").get_data(as_text=True)
    assert "crm-audit-changes" in shown and "深圳南山云图科技有限公司" in shown
    api = admin_client.get("/api/v1/auditlog/")
    assert api.status_code == 200
    assert api.get_json()["result"][0]["changes"]["name"] == [None, "深圳南山云图科技有限公司"]
    assert admin_client.post("/api/v1/auditlog/", json={"model": "x"}).status_code == 405
    assert admin_client.delete(f"/api/v1/auditlog/{entry_id}").status_code == 405
    assert rep_client.get("/auditlog/list/").status_code in (302, 403)
    assert rep_client.get("/api/v1/auditlog/").status_code in (401, 403)


@pytest.mark.crm_audit_unchecked
def test_the_shared_check_finds_a_missing_entry(app):
    check = AuditCheck(app)
    check.start()
    try:
        with app.app_context():
            session().add(Customer(name="无锡新吴金桥机械有限公司"))
            session().commit()
        assert check.mismatch() is None
        with app.app_context():
            session().execute(AuditLog.__table__.delete())  # behind the ORM's back
            session().commit()
        problem = check.mismatch()
    finally:
        check.stop()
    assert problem is not None and "missing entries" in problem and "customer" in problem


def test_tagging_a_customer_is_audited_with_the_tag_names(app, admin_client):
    from crm_core.customers.models import Tag

    with app.app_context():
        session().add_all([Tag(name="重点客户"), Tag(name="VIP")])
        session().commit()
        vip, key = (
            session().scalar(select(Tag.id).where(Tag.name == n)) for n in ("VIP", "重点客户")
        )
    pk = add_customer(app, name="宁波鄞州港城电器有限公司")
    form = {"name": "宁波鄞州港城电器有限公司", "kind": "company", "code": "", "tags": [vip]}
    with app.app_context():
        form["code"] = session().get(Customer, pk).code
    admin_client.post(f"/customers/edit/{pk}", data=form, follow_redirects=True)
    admin_client.post(
        f"/customers/edit/{pk}", data={**form, "tags": [vip, key]}, follow_redirects=True
    )
    entries = _entries(app, pk)
    assert [e.changes.get("tags") for e in entries[1:]] == [
        [[], ["VIP"]],
        [["VIP"], ["VIP", "重点客户"]],
    ]
    history = admin_client.get(f"/customer/{pk}").get_data(as_text=True)
    assert "VIP、重点客户" in history and "[&#39;VIP&#39;" not in history
