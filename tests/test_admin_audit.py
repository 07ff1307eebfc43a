"""Logins and roles in the audit trail: an admin who makes a login, gives it a role, resets its
password or widens what a role may do leaves an entry saying who did what, with stored role and
permission names and never a password hash; logging in is not a change of the account."""

from __future__ import annotations

import json
from typing import Any

from sqlalchemy import select

from crm_core.db import session
from crm_core.security.audit import AuditLog
from crm_core.testing.plugin import login_client

NEW_USER, NEW_PASSWORD = "zhao_min", "Zhao-min-2026"


def _entries(app: Any, model: str, record_id: int) -> list[AuditLog]:
    with app.app_context():
        query = select(AuditLog).where(AuditLog.model == model, AuditLog.record_id == record_id)
        rows = list(session().scalars(query.order_by(AuditLog.id)))
        for row in rows:
            session().expunge(row)
        return rows


def _ids(app: Any) -> tuple[int, int, int]:
    with app.app_context():
        sm = app.appbuilder.sm
        return sm.find_role("Sales Rep").id, sm.find_role("Analyst").id, sm.find_role("Admin").id


def _user_form(**fields: Any) -> dict[str, Any]:
    form = {
        "first_name": "敏",
        "last_name": "赵",
        "username": NEW_USER,
        "active": "y",
        "email": "zhao.min@example.cn",
    }
    form.update(fields)
    return form


def test_a_login_made_and_given_a_role_is_in_the_audit_trail(app, admin_client):
    rep, analyst, _admin = _ids(app)
    made = admin_client.post(
        "/users/add",
        data=_user_form(roles=[str(rep)], password=NEW_PASSWORD, conf_password=NEW_PASSWORD),
    )
    assert made.status_code == 302, made.get_data(as_text=True)[-1500:]
    with app.app_context():
        user = app.appbuilder.sm.find_user(username=NEW_USER)
        user_id, pw_hash = user.id, user.password
    [created] = _entries(app, "user", user_id)
    assert created.operation == "acct_new" and created.username == "t_admin"
    assert created.channel == "web"
    assert created.changes["username"] == [None, NEW_USER]
    assert created.changes["roles"] == [None, ["Sales Rep"]]  # the stored name, not 销售代表
    assert created.changes["password"] == [None, "***"]
    assert pw_hash not in json.dumps(created.changes)

    # Logging in changes the login's counters only: no entry.
    login_client(app, NEW_USER, NEW_PASSWORD)
    assert len(_entries(app, "user", user_id)) == 1

    edited = admin_client.post(
        f"/users/edit/{user_id}", data=_user_form(roles=[str(rep), str(analyst)], active="")
    )
    assert edited.status_code == 302, edited.get_data(as_text=True)[-1500:]
    entries = _entries(app, "user", user_id)
    assert len(entries) == 2, [(e.operation, e.changes) for e in entries]
    changed = entries[1]
    assert changed.operation == "acct_edit"
    assert changed.changes == {
        "active": [True, False],
        "roles": [["Sales Rep"], ["Analyst", "Sales Rep"]],
    }

    listing = admin_client.get("/auditlog/list/?_flt_0_model=user").get_data(as_text=True)
    assert "新建登录账户" in listing and "修改登录账户" in listing


def test_a_password_reset_is_recorded_without_the_password(app, admin_client):
    with app.app_context():
        user = app.appbuilder.sm.find_user(username="t_reader")
        user_id, old_hash = user.id, user.password
    form = {"password": "Reset-pass-2026", "conf_password": "Reset-pass-2026"}
    response = admin_client.post(f"/resetpassword/form?pk={user_id}", data=form)
    assert response.status_code == 302, response.get_data(as_text=True)[-1500:]
    try:
        [entry] = _entries(app, "user", user_id)
        assert entry.operation == "acct_edit"
        assert entry.changes == {"password": ["***", "***"]}
    finally:
        with app.app_context():
            app.appbuilder.sm.find_user(username="t_reader").password = old_hash
            session().commit()


def test_what_a_role_gained_and_lost_is_in_the_audit_trail(app, admin_client):
    from flask_appbuilder.security.sqla.models import PermissionView

    rep, _analyst, _admin = _ids(app)
    with app.app_context():
        role = app.appbuilder.sm.find_role("Sales Rep")
        before = [pv.id for pv in role.permissions]
        granted = app.appbuilder.sm.find_permission_view_menu("can_delete", "CustomerView")
        dropped = next(pv for pv in role.permissions if repr(pv) == "can edit on ContactView")
        kept = [pv for pv in before if pv != dropped.id]
        assert granted is not None and granted.id not in before
        wanted = [str(pk) for pk in [*kept, granted.id]]
    try:
        response = admin_client.post(
            f"/roles/edit/{rep}", data={"name": "Sales Rep", "permissions": wanted}
        )
        assert response.status_code == 302, response.get_data(as_text=True)[-1500:]
        [entry] = _entries(app, "role", rep)
        assert entry.operation == "role_edit" and entry.username == "t_admin"
        assert entry.changes == {
            "permissions added": [None, ["can delete on CustomerView"]],
            "permissions removed": [["can edit on ContactView"], None],
        }
    finally:
        with app.app_context():
            role = app.appbuilder.sm.find_role("Sales Rep")
            role.permissions = list(
                session().scalars(select(PermissionView).where(PermissionView.id.in_(before)))
            )
            session().commit()


def test_a_rolled_back_change_leaves_no_entry(app):
    with app.app_context():
        user = app.appbuilder.sm.find_user(username="t_analyst")
        user.email = "elsewhere@example.cn"
        session().flush()
        session().rollback()
        user_id = app.appbuilder.sm.find_user(username="t_analyst").id
    assert _entries(app, "user", user_id) == []


def _setting_entries(app: Any) -> list[AuditLog]:
    return [e for e in _entries(app, "setting", 0) if e.operation == "setting"]


def test_settings_changed_are_in_one_entry_and_secrets_stay_hidden(app, admin_client):
    from test_notifications import _channels_form

    saved = admin_client.post(
        "/notification-channels/",
        data=_channels_form(smtp_host="smtp.example.cn", smtp_password="口令-s3cret"),
    )
    assert saved.status_code == 302, saved.get_data(as_text=True)[-1500:]
    entries = _setting_entries(app)
    assert len(entries) == 1, [e.changes for e in entries]
    entry = entries[0]
    assert entry.username == "t_admin" and entry.channel == "web"
    assert entry.changes["notifications.smtp_host"] == ["", "smtp.example.cn"]
    assert entry.changes["notifications.smtp_password"] == [None, "***"]
    assert "口令-s3cret" not in json.dumps(entry.changes, ensure_ascii=False)
    assert "notifications.smtp_port" not in entry.changes  # saved as it was: no change

    page = admin_client.get("/settings/").get_data(as_text=True)
    assert "lockout.max_failures" in page or "pool.reclaim_days" in page
    form = {"pool.reclaim_days": "45"}
    assert admin_client.post("/settings/", data=form).status_code == 302
    latest = _setting_entries(app)[-1]
    assert latest.changes == {"pool.reclaim_days": [30, 45]}
    listing = admin_client.get("/auditlog/list/?_flt_0_model=setting").get_data(as_text=True)
    assert "修改设置" in listing


def test_a_record_rule_changed_on_its_screen_is_audited(app, admin_client):
    with app.app_context():
        from crm_core.security.models import RecordRule

        role = app.appbuilder.sm.find_role("Sales Rep")
        rule = session().scalar(
            select(RecordRule).where(RecordRule.role_id == role.id, RecordRule.model == "*")
        )
        rule_id, role_id = rule.id, role.id
    form = {"role": str(role_id), "model": "*", "read_scope": "team", "write_scope": "own"}
    try:
        response = admin_client.post(f"/recordrules/edit/{rule_id}", data={**form, "pool": "y"})
        assert response.status_code == 302, response.get_data(as_text=True)[-1500:]
        [entry] = _entries(app, "record_rule", rule_id)
        assert entry.operation == "update" and entry.username == "t_admin"
        assert entry.changes == {"read_scope": ["own", "team"]}
        listing = admin_client.get("/auditlog/list/?_flt_0_model=record_rule")
        assert "<td>数据权限</td>" in listing.get_data(as_text=True).replace("\n", "")
    finally:
        with app.app_context():
            session().get(RecordRule, rule_id).read_scope = "own"
            session().commit()
