"""API keys of integrations: made on the admin screen or with ``crm keys``, shown once, stored
hashed, limited to one role of their user, revocable, with their last use."""

from __future__ import annotations

import re
from datetime import timedelta

from click.testing import CliRunner
from flask import Flask
from flask.cli import ScriptInfo
from flask_appbuilder.security.sqla.models import ApiKey
from sqlalchemy import select, update

from crm_core.cli import main
from crm_core.db import session, utcnow
from crm_core.security.audit import AuditLog
from crm_core.testing.plugin import ROLE_USERS, user_id

CUSTOMERS = "/api/v1/customer/"


def _role_id(app: Flask, name: str) -> int:
    with app.app_context():
        return int(app.appbuilder.sm.find_role(name).id)


def _make_on_screen(app: Flask, client, username: str, role: str, **extra: str):  # type: ignore[no-untyped-def]
    response = client.post(
        "/apikeys/add",
        data={"name": "ERP 同步", "user": str(user_id(app, username)), "role": role, **extra},
    )
    return response


def _shown_key(response) -> str:  # type: ignore[no-untyped-def]
    match = re.search(r'<code id="crm-api-key">([^<]+)</code>', response.get_data(as_text=True))
    assert match, "the new key is not shown"
    return match.group(1)


def _keys(app: Flask) -> list[ApiKey]:
    with app.app_context():
        rows = list(session().scalars(select(ApiKey).order_by(ApiKey.id)))
        session().expunge_all()
        return rows


def _audit(app: Flask, operation: str) -> list[AuditLog]:
    with app.app_context():
        rows = session().scalars(select(AuditLog).where(AuditLog.operation == operation)).all()
        session().expunge_all()
        return list(rows)


def test_admin_makes_a_key_that_is_shown_once_and_stored_hashed(app, admin_client):
    response = _make_on_screen(app, admin_client, ROLE_USERS["Read-only"], "Read-only")
    assert response.status_code == 200
    assert response.headers["Cache-Control"] == "no-store"
    raw = _shown_key(response)
    assert raw.startswith("crm_") and len(raw) > 40
    assert "只显示这一次" in response.get_data(as_text=True)
    [key] = _keys(app)
    assert raw not in (key.key_hash, key.lookup_hash) and raw not in key.key_hash
    assert key.scopes == "Read-only" and key.last_used_on is None
    listing = admin_client.get("/apikeys/list/").get_data(as_text=True)
    assert "ERP 同步" in listing and raw not in listing
    [entry] = _audit(app, "key_new")
    assert (entry.model, entry.record_id, entry.username) == (
        "user",
        user_id(app, "Read-only"),
        ROLE_USERS["Admin"],
    )


def test_a_key_authenticates_rest_calls_in_every_header_form(app, admin_client):
    raw = _shown_key(_make_on_screen(app, admin_client, ROLE_USERS["Read-only"], "Read-only"))
    client = app.test_client()
    for headers in (
        {"Authorization": f"ApiKey {raw}"},
        {"X-API-Key": raw},
        {"Authorization": f"Bearer {raw}"},
    ):
        assert client.get(CUSTOMERS, headers=headers).status_code == 200, headers
    [key] = _keys(app)
    assert key.last_used_on is not None and utcnow() - key.last_used_on < timedelta(minutes=1)
    # The role decides: a read-only key cannot write.
    denied = client.post(CUSTOMERS, json={"name": "只读公司"}, headers={"X-API-Key": raw})
    assert denied.status_code == 403
    # Screens are for people: a key does not open them.
    screen = client.get("/customers/list/", headers={"X-API-Key": raw})
    assert screen.status_code == 302 and "/login" in screen.headers["Location"]


def test_a_key_has_only_the_role_it_was_made_for(app, admin_client):
    admin = ROLE_USERS["Admin"]
    with app.app_context():  # an admin who is also a read-only user
        sm = app.appbuilder.sm
        user = sm.find_user(username=admin)
        user.roles.append(sm.find_role("Read-only"))
        session().commit()
    try:
        reader_key = _shown_key(_make_on_screen(app, admin_client, admin, "Read-only"))
        admin_key = _shown_key(_make_on_screen(app, admin_client, admin, "Admin"))
        client = app.test_client()
        body = {"name": "杭州西湖数据服务有限公司"}
        refused = client.post(CUSTOMERS, json=body, headers={"X-API-Key": reader_key})
        assert refused.status_code == 403
        created = client.post(CUSTOMERS, json=body, headers={"X-API-Key": admin_key})
        assert created.status_code == 201, created.get_json()
        with app.app_context():
            entry = session().scalars(select(AuditLog).where(AuditLog.model == "customer")).one()
            assert (entry.username, entry.channel) == (admin, "api")
    finally:
        with app.app_context():
            sm = app.appbuilder.sm
            user = sm.find_user(username=admin)
            user.roles = [sm.find_role("Admin")]
            session().commit()


def test_a_key_for_a_role_its_user_lacks_is_refused(app, admin_client):
    response = _make_on_screen(app, admin_client, ROLE_USERS["Read-only"], "Admin")
    assert response.status_code == 200
    assert "没有角色" in response.get_data(as_text=True)
    assert _keys(app) == []


def test_revoked_expired_wrong_and_inactive_keys_are_refused(app, admin_client):
    reader = ROLE_USERS["Read-only"]
    raw = _shown_key(_make_on_screen(app, admin_client, reader, "Read-only"))
    client = app.test_client()
    assert client.get(CUSTOMERS, headers={"X-API-Key": raw + "x"}).status_code == 401
    assert client.get(CUSTOMERS, headers={"X-API-Key": "crm_nothing"}).status_code == 401
    with app.app_context():
        session().execute(update(ApiKey).values(expires_on=utcnow() - timedelta(minutes=1)))
        session().commit()
    assert client.get(CUSTOMERS, headers={"X-API-Key": raw}).status_code == 401
    with app.app_context():
        session().execute(update(ApiKey).values(expires_on=None))
        sm = app.appbuilder.sm
        sm.find_user(username=reader).active = False
        session().commit()
    try:
        assert client.get(CUSTOMERS, headers={"X-API-Key": raw}).status_code == 401
    finally:
        with app.app_context():
            app.appbuilder.sm.find_user(username=reader).active = True
            session().commit()
    assert client.get(CUSTOMERS, headers={"X-API-Key": raw}).status_code == 200
    [key] = _keys(app)
    done = admin_client.post(
        "/apikeys/action_post",
        data={"action": "revoke", "rowid": [str(key.id)]},
        follow_redirects=True,
    )
    assert "已吊销密钥：1" in done.get_data(as_text=True)
    assert client.get(CUSTOMERS, headers={"X-API-Key": raw}).status_code == 401
    [entry] = _audit(app, "key_revoke")
    assert entry.username == ROLE_USERS["Admin"] and entry.changes["api_key"] == ["ERP 同步", None]
    assert "已吊销" in admin_client.get("/apikeys/list/").get_data(as_text=True)


def test_only_admins_manage_keys(app, rep_client):
    assert rep_client.get("/apikeys/list/").status_code in (302, 403)
    rep_client.post("/apikeys/add", data={"name": "x", "user": "1", "role": "Admin"})
    assert _keys(app) == []


def test_cli_makes_lists_and_revokes_keys(app):
    def crm(*args: str):  # type: ignore[no-untyped-def]
        return CliRunner().invoke(main, list(args), obj=ScriptInfo(create_app=lambda: app))

    reader = ROLE_USERS["Read-only"]
    made = crm("keys", "api-create", "--user", reader)
    assert made.exit_code == 0, made.output
    raw = made.output.strip().splitlines()[-1]
    client = app.test_client()
    assert client.get(CUSTOMERS, headers={"Authorization": f"ApiKey {raw}"}).status_code == 200
    listed = crm("keys", "list")
    assert reader in listed.output and "Read-only" in listed.output and "active" in listed.output
    [key] = _keys(app)
    assert crm("keys", "revoke", str(key.id)).exit_code == 0
    assert client.get(CUSTOMERS, headers={"Authorization": f"ApiKey {raw}"}).status_code == 401
    assert "inactive" in crm("keys", "list").output
    [entry] = _audit(app, "key_new")
    assert entry.channel == "cli"
    assert crm("keys", "api-create", "--user", "nobody").exit_code != 0


def test_a_key_sees_only_the_records_its_role_may_see(app, admin_client):
    """Record rules follow the key's role, not the widest role of its user."""
    from helpers import add_customer

    rep = ROLE_USERS["Sales Rep"]
    with app.app_context():  # a rep who is also a read-only user (who reads everything)
        sm = app.appbuilder.sm
        user = sm.find_user(username=rep)
        user.roles.append(sm.find_role("Read-only"))
        session().commit()
    mine = add_customer(app, name="嘉兴南湖自家客户有限公司", owner_id=user_id(app, rep))
    other = add_customer(app, name="湖州吴兴别家客户有限公司", owner_id=user_id(app, "Admin"))
    try:
        rep_key = _shown_key(_make_on_screen(app, admin_client, rep, "Sales Rep"))
        reader_key = _shown_key(_make_on_screen(app, admin_client, rep, "Read-only"))
        client = app.test_client()
        as_rep = client.get(CUSTOMERS, headers={"X-API-Key": rep_key}).get_json()["ids"]
        as_reader = client.get(CUSTOMERS, headers={"X-API-Key": reader_key}).get_json()["ids"]
        assert mine in as_rep and other not in as_rep
        assert {mine, other} <= set(as_reader)
    finally:
        with app.app_context():
            sm = app.appbuilder.sm
            user = sm.find_user(username=rep)
            user.roles = [sm.find_role("Sales Rep")]
            session().commit()
