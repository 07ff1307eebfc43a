"""Record rules: what each user sees and may change, on every screen and API alike."""

from __future__ import annotations

import re
from dataclasses import dataclass

import prison
import pytest
from flask import Flask
from helpers import add_customer
from sqlalchemy import select

from crm_core.cli.users import ensure_user
from crm_core.customers.models import Contact, Customer
from crm_core.db import session
from crm_core.org.models import Team, UserProfile
from crm_core.org.tree import refresh_paths
from crm_core.security.models import RecordRule
from crm_core.testing.plugin import PASSWORD, login_client, user_id


@dataclass
class Org:
    """华东区 with 上海组 below it, and 华南区; a customer per owner plus one in the pool."""

    own: int  # t_rep's (上海组)
    teammate: int  # rep_sh2's (上海组)
    east: int  # mgr_east's (华东区)
    south: int  # rep_south's (华南区)
    pool: int
    contact_own: int
    contact_south: int


def _member(app: Flask, username: str, role: str, team_id: int) -> int:
    ensure_user(username, PASSWORD, f"{username}@example.cn", role, first=username)
    uid = user_id(app, username)
    session().add(UserProfile(user_id=uid, team_id=team_id))
    return uid


@pytest.fixture
def org(app: Flask) -> Org:
    with app.app_context():
        s = session()
        east = Team(name="华东区")
        s.add(east)
        s.flush()
        shanghai, south = Team(name="上海组", parent_id=east.id), Team(name="华南区")
        s.add_all([shanghai, south])
        s.flush()
        refresh_paths()
        rep = user_id(app, "Sales Rep")
        s.add(UserProfile(user_id=rep, team_id=shanghai.id))
        mate = _member(app, "rep_sh2", "Sales Rep", shanghai.id)
        _member(app, "mgr_east", "Sales Manager", east.id)
        rep_south = _member(app, "rep_south", "Sales Rep", south.id)
        s.commit()
        mgr = user_id(app, "mgr_east")
    ids = {
        "own": add_customer(app, name="上海浦东华信贸易有限公司", owner_id=rep),
        "teammate": add_customer(app, name="上海闵行新锐机械有限公司", owner_id=mate),
        "east": add_customer(app, name="南京江宁东方电气有限公司", owner_id=mgr),
        "south": add_customer(app, name="广州天河南粤食品有限公司", owner_id=rep_south),
        "pool": add_customer(app, name="苏州吴中公海样本有限公司", owner_id=None),
    }
    with app.app_context():
        contacts = [
            Contact(customer_id=ids["own"], name="陈静"),
            Contact(customer_id=ids["south"], name="黄伟"),
        ]
        session().add_all(contacts)
        session().commit()
        ids["contact_own"], ids["contact_south"] = contacts[0].id, contacts[1].id
    return Org(**ids)


def _api_ids(client, path: str = "/api/v1/customer/") -> set[int]:
    response = client.get(path + "?q=" + prison.dumps({"page_size": 100}))
    assert response.status_code == 200, response.get_data(as_text=True)
    body = response.get_json()
    assert body["count"] == len(body["ids"])  # the count agrees with the rows
    return set(body["ids"])


def test_rep_sees_own_and_pool_customers_only(app, org):
    rep = login_client(app, "Sales Rep")
    assert _api_ids(rep) == {org.own, org.pool}
    html = rep.get("/customers/list/").get_data(as_text=True)
    assert "上海浦东华信贸易有限公司" in html and "上海闵行新锐机械有限公司" not in html
    assert re.search(r"记录数:\s*(<[^>]+>\s*)*2\b", html)  # own and pooled customers
    for path in (
        f"/api/v1/customer/{org.teammate}",
        f"/customers/show/{org.teammate}",
        f"/customers/edit/{org.teammate}",
        f"/customer/{org.south}",
    ):
        assert rep.get(path, follow_redirects=True).status_code == 404, path
    assert rep.get(f"/api/v1/customer/{org.own}").status_code == 200


def test_search_and_pickers_stay_inside_the_rules(app, org):
    rep = login_client(app, "Sales Rep")
    q = {"filters": [{"col": "name", "opr": "sw", "value": "上海"}]}
    found = rep.get("/api/v1/customer/?q=" + prison.dumps(q)).get_json()
    assert found["ids"] == [org.own] and found["count"] == 1
    # The customer picker of the contact form offers only customers the rep may see,
    # searched by prefix or fetched by number, and refuses one the rep may not see.
    offered = {o["text"] for o in rep.get("/pick/customer?q=").get_json()["results"]}
    assert "上海浦东华信贸易有限公司" in offered and "广州天河南粤食品有限公司" not in offered
    assert rep.get("/pick/customer?q=上海浦东").get_json()["results"][0]["id"] == org.own
    assert rep.get(f"/pick/customer?id={org.south}").get_json()["results"] == []
    refused = rep.post("/contacts/add", data={"customer": str(org.south), "name": "钱进"})
    assert "Choose a record from the list." in refused.get_data(as_text=True) or (
        "请从列表中选择" in refused.get_data(as_text=True)
    )
    with app.app_context():
        assert session().scalar(select(Contact).where(Contact.name == "钱进")) is None


def test_contacts_follow_their_customer(app, org):
    rep = login_client(app, "Sales Rep")
    assert _api_ids(rep, "/api/v1/contact/") == {org.contact_own}
    assert rep.get(f"/api/v1/contact/{org.contact_south}").status_code == 404
    hidden = rep.post("/api/v1/contact/", json={"name": "周敏", "customer_id": org.south})
    assert hidden.status_code == 422 and "customer_id" in hidden.get_json()["message"]
    with app.app_context():
        assert session().scalar(select(Contact).where(Contact.name == "周敏")) is None


def test_rep_cannot_hand_a_customer_to_someone_else(app, org):
    rep = login_client(app, "Sales Rep")
    other = user_id(app, "rep_south")
    moved = rep.put(f"/api/v1/customer/{org.own}", json={"owner_id": other})
    assert moved.status_code == 403
    assert "_schema" in moved.get_json()["message"]
    planted = rep.post(
        "/api/v1/customer/", json={"name": "宁波北仑港通物流有限公司", "owner_id": other}
    )
    assert planted.status_code == 403
    with app.app_context():
        assert session().get(Customer, org.own).owner_id == user_id(app, "Sales Rep")
        found = select(Customer).where(Customer.name == "宁波北仑港通物流有限公司")
        assert session().scalar(found) is None
    # Editing one's own customer still works, and keeps it one's own.
    edited = rep.put(f"/api/v1/customer/{org.own}", json={"city": "上海市"})
    assert edited.status_code == 200


def test_manager_sees_the_team_tree(app, org):
    mgr = login_client(app, "mgr_east")
    assert _api_ids(mgr) == {org.own, org.teammate, org.east, org.pool}
    # A manager may reassign within the tree, not to another region's rep.
    mate = user_id(app, "rep_sh2")
    assert mgr.put(f"/api/v1/customer/{org.own}", json={"owner_id": mate}).status_code == 200
    south = user_id(app, "rep_south")
    assert mgr.put(f"/api/v1/customer/{org.east}", json={"owner_id": south}).status_code == 403


def test_read_only_roles_see_everything_and_change_nothing(app, org):
    for role in ("Read-only", "Analyst"):
        client = login_client(app, role)
        assert _api_ids(client) == {org.own, org.teammate, org.east, org.south, org.pool}
        changed = client.put(f"/api/v1/customer/{org.own}", json={"city": "北京市"})
        assert changed.status_code in (403, 405), role
    with app.app_context():
        assert session().get(Customer, org.own).city is None


def test_service_agent_logs_activities_on_any_customer_but_edits_none(app, org):
    agent = login_client(app, "Service Agent")
    logged = agent.post(
        "/api/v1/activity/", json={"subject": "电话回访：设备运行正常", "customer_id": org.south}
    )
    assert logged.status_code == 201, logged.get_data(as_text=True)
    assert agent.put(f"/api/v1/customer/{org.south}", json={"city": "佛山市"}).status_code == 403


def test_admin_changes_a_rule_and_it_applies_on_the_next_request(app, org):
    rep = login_client(app, "Sales Rep")
    assert org.teammate not in _api_ids(rep)
    with app.app_context():
        role = app.appbuilder.sm.find_role("Sales Rep")
        rule = RecordRule(
            role_id=role.id, model="Customer", read_scope="team", write_scope="own", pool=True
        )
        session().add(rule)
        session().commit()
        rule_id = rule.id
    try:
        assert _api_ids(rep) == {org.own, org.teammate, org.pool}
        blocked = rep.put(f"/api/v1/customer/{org.teammate}", json={"city": "上海市"})
        assert blocked.status_code == 403  # a read-only view of the teammate's customer
        form = rep.post(
            f"/customers/edit/{org.teammate}",
            data={"name": "上海闵行新锐机械有限公司", "kind": "company", "city": "上海市"},
            follow_redirects=True,
        ).get_data(as_text=True)
        assert "您无权修改此记录。" in form  # the rule's own message, not a database error
    finally:
        with app.app_context():
            session().delete(session().get(RecordRule, rule_id))
            session().commit()


def test_rules_admin_screen(app, admin_client):
    page = admin_client.get("/recordrules/list/")
    assert page.status_code == 200
    text = page.get_data(as_text=True)
    assert "销售代表" in text and "本人的记录" in text


def test_manager_archives_from_the_list_and_the_pool_screen_archives_only_pooled(app, org):
    mgr = login_client(app, "mgr_east")
    archived = mgr.post("/customers/action_post", data={"action": "archive", "rowid": [org.own]})
    assert archived.status_code == 302
    admin = login_client(app, "Admin")
    admin.post("/pool/action_post", data={"action": "archive", "rowid": [org.south]})
    with app.app_context():
        assert session().get(Customer, org.own).active is False
        assert session().get(Customer, org.south).active is True  # not in the pool


def test_a_follow_up_on_a_customer_one_cannot_see_stays_editable_and_linked(app, org):
    from crm_core.activities.models import Activity

    rep = user_id(app, "Sales Rep")
    with app.app_context():
        activity = Activity(subject="拜访华南客户", customer_id=org.south, owner_id=rep)
        session().add(activity)
        session().commit()
        pk = activity.id
    client = login_client(app, "Sales Rep")
    put = client.put(f"/api/v1/activity/{pk}", json={"body": "客户确认下周签约"})
    assert put.status_code == 200, put.get_json()
    form = client.post(
        f"/activities/edit/{pk}",
        data={"kind": "note", "subject": "拜访华南客户（已改）", "customer": "", "done": "y"},
        follow_redirects=True,
    )
    assert form.status_code == 200
    with app.app_context():
        stored = session().get(Activity, pk)
        assert (stored.subject, stored.customer_id, stored.done) == (
            "拜访华南客户（已改）",
            org.south,
            True,
        )


def test_an_open_follow_up_can_be_added_from_the_screen(app, org):
    from crm_core.activities.models import Activity

    client = login_client(app, "Sales Rep")
    client.post(
        "/activities/add",
        data={"kind": "call", "subject": "电话确认报价", "customer": str(org.own)},
        follow_redirects=True,
    )
    with app.app_context():
        found = session().scalar(select(Activity).where(Activity.subject == "电话确认报价"))
        assert found is not None and found.done is False


def test_a_rep_cannot_move_a_pooled_customers_contact_to_their_own(app, org):
    with app.app_context():
        pooled = Contact(customer_id=org.pool, name="公海联系人")
        session().add(pooled)
        session().commit()
        pk = pooled.id
    rep = login_client(app, "Sales Rep")
    assert rep.get(f"/api/v1/contact/{pk}").status_code == 200  # the pool is readable
    moved = rep.put(f"/api/v1/contact/{pk}", json={"customer_id": org.own})
    assert moved.status_code == 403
    with app.app_context():
        assert session().get(Contact, pk).customer_id == org.pool
