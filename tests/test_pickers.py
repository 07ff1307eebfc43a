"""Record pickers: a contact's or follow-up's customer is picked by typing, never chosen from a
select of every customer; the picker offers only active customers the user may read."""

from __future__ import annotations

import re
from dataclasses import dataclass

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select

from crm_core.cli.users import ensure_user
from crm_core.customers.models import Contact, Customer
from crm_core.db import session
from crm_core.org.models import Team, UserProfile
from crm_core.org.tree import refresh_paths
from crm_core.testing.plugin import PASSWORD, login_client, user_id

#: The rep's own customers, enough for three pages of the picker (20 a page).
OWN = 60
REFUSED = "请从列表中选择记录。"  # "Choose a record from the list."


def _own_name(i: int) -> str:
    return f"杭州拾选{i:02d}贸易有限公司"


@dataclass
class World:
    """t_rep (上海组) owns ``own`` and ``acme``; ``pool`` has no owner; ``south`` belongs to
    rep_south (华南区); ``archived`` is the rep's but archived."""

    own: list[int]
    acme: int
    pool: int
    south: int
    archived: int


@pytest.fixture
def world(app: Flask) -> World:
    with app.app_context():
        s = session()
        shanghai, south_team = Team(name="上海组"), Team(name="华南区")
        s.add_all([shanghai, south_team])
        s.flush()
        refresh_paths()
        rep = user_id(app, "Sales Rep")
        s.add(UserProfile(user_id=rep, team_id=shanghai.id))
        ensure_user("rep_south", PASSWORD, "rep_south@example.cn", "Sales Rep", first="rep_south")
        rep_south = user_id(app, "rep_south")
        s.add(UserProfile(user_id=rep_south, team_id=south_team.id))
        own = [Customer(name=_own_name(i), code=f"PKA{i:04d}", owner_id=rep) for i in range(OWN)]
        acme = Customer(name="Hangzhou Acme Robotics Co., Ltd.", code="ACME-7", owner_id=rep)
        pool = Customer(name="苏州公海样本有限公司", code="POOL-1", owner_id=None)
        south = Customer(name="广州天河南粤食品有限公司", code="SOUTH-1", owner_id=rep_south)
        archived = Customer(
            name="杭州拾选已归档贸易有限公司", code="PKA-ARCH", owner_id=rep, active=False
        )
        s.add_all([*own, acme, pool, south, archived])
        s.commit()
        return World(
            own=[c.id for c in own],
            acme=acme.id,
            pool=pool.id,
            south=south.id,
            archived=archived.id,
        )


def _readable(html: str) -> str:
    """The page with the JSON-escaped filter templates of FAB's search panel decoded."""
    text = re.sub(r"\\u([0-9a-fA-F]{4})", lambda m: chr(int(m[1], 16)), html)
    return text.replace('\\"', '"').replace("\\/", "/")


def _selects(html: str, name: str = "customer") -> list[tuple[str, list[tuple[str, str]]]]:
    """Each select named ``name`` on the page (forms and filter templates): its opening tag
    and its options as ``(value, text)``."""
    found = re.findall(rf'(<select[^>]*\bname="{name}"[^>]*>)(.*?)</select>', _readable(html), re.S)
    return [
        (tag, re.findall(r'<option value="([^"]*)"[^>]*>([^<]*)</option>', body))
        for tag, body in found
    ]


def _pick(client: FlaskClient, path: str = "/pick/customer", **args: object) -> dict:
    response = client.get(path, query_string=args)
    assert response.status_code == 200, (args, response.get_data(as_text=True)[:500])
    body = response.get_json()
    assert set(body) == {"results", "pagination"}, body
    return body


def _texts(body: dict) -> list[str]:
    return [r["text"] for r in body["results"]]


def _contact_names(app: Flask) -> dict[str, int]:
    with app.app_context():
        return {c.name: c.customer_id for c in session().scalars(select(Contact))}


def _field_row(html: str, name: str) -> str:
    """The form's row (label, field and its messages) holding the field ``name``."""
    rows = re.findall(r"<tr\b.*?</tr>", html, re.S)
    matching = [r for r in rows if f'name="{name}"' in r]
    assert len(matching) == 1, f"no single form row holds {name}"
    return matching[0]


def test_forms_and_filters_list_no_customers(app, world, admin_client):
    """The admin reads every customer, yet no form or list filter lists one of them."""
    pages = {
        "/contacts/add": ("customer",),
        "/activities/add": ("customer", "contact"),
        "/contacts/list/": ("customer",),
        "/activities/list/": ("customer",),
    }
    for path, fields in pages.items():
        response = admin_client.get(path)
        assert response.status_code == 200, path
        html = response.get_data(as_text=True)
        for field in fields:
            selects = _selects(html, field)
            assert selects, f"{path} has no {field} field"
            for tag, options in selects:
                assert "crm-record-picker" in tag and f'data-url="/pick/{field}"' in tag, tag
                assert options == [("", "")], (path, field, options[:3])
        readable = _readable(html)
        listed = [n for n in map(_own_name, range(OWN)) if n in readable]
        assert not listed, f"{path} lists customers: {listed[:3]}"
        assert "Hangzhou Acme" not in readable and "广州天河南粤" not in readable, path


def test_edit_form_holds_its_current_customer_only(app, world, rep_client):
    with app.app_context():
        contact = Contact(customer_id=world.own[7], name="陈静")
        session().add(contact)
        session().commit()
        pk = contact.id
    html = rep_client.get(f"/contacts/edit/{pk}").get_data(as_text=True)
    ((tag, options),) = _selects(html)
    assert "crm-record-picker" in tag
    assert options == [("", ""), (str(world.own[7]), _own_name(7))]


def test_picker_pages_through_the_matches(app, world, rep_client):
    names = [_own_name(i) for i in range(OWN)]
    seen: list[str] = []
    for page, more in ((1, True), (2, True), (3, False)):
        body = _pick(rep_client, q="杭州拾选", page=page)
        assert len(body["results"]) == 20 and body["pagination"]["more"] is more, page
        seen += _texts(body)
    assert seen == names  # by name, none twice, the archived one left out
    assert _pick(rep_client, q="杭州拾选", page=4) == {"results": [], "pagination": {"more": False}}
    ids = {r["id"] for r in _pick(rep_client, q="杭州拾选", page=2)["results"]}
    assert ids == set(world.own[20:40])


def test_picker_matches_name_or_code_prefix_ignoring_latin_case(app, world, rep_client):
    for typed in ("Hangzhou Acme", "hangzhou acme", "HANGZHOU", "acme-7", "Acme"):
        body = _pick(rep_client, q=typed)
        assert [r["id"] for r in body["results"]] == [world.acme], typed
        assert body["pagination"]["more"] is False
    assert _texts(_pick(rep_client, q="pka000")) == [_own_name(i) for i in range(10)]
    assert _texts(_pick(rep_client, q="  杭州拾选07 ")) == [_own_name(7)]
    assert _texts(_pick(rep_client, q="苏州公海")) == ["苏州公海样本有限公司"]
    for typed in ("拾选", "Robotics", "杭州拾选%", "杭州拾选_0", "ACME-8"):  # prefixes only
        assert _pick(rep_client, q=typed)["results"] == [], typed


def test_picker_leaves_out_archived_customers(app, world, admin_client, rep_client):
    for client in (admin_client, rep_client):
        assert _pick(client, q="杭州拾选已")["results"] == []
        assert _pick(client, q="PKA-ARCH")["results"] == []
        assert _pick(client, id=world.archived)["results"] == []


def test_rep_picks_only_customers_the_record_rules_allow(app, world, rep_client, admin_client):
    everything: list[dict] = []
    for page in (1, 2, 3, 4):
        everything += _pick(rep_client, q="", page=page)["results"]
    assert {r["id"] for r in everything} == {*world.own, world.acme, world.pool}
    assert len(everything) == OWN + 2
    assert _pick(rep_client, q="广州")["results"] == []
    assert _pick(rep_client, q="SOUTH")["results"] == []
    assert _pick(rep_client, id=world.south) == {"results": [], "pagination": {"more": False}}
    assert _pick(rep_client, id=world.pool)["results"] == [
        {"id": world.pool, "text": "苏州公海样本有限公司"}
    ]
    assert _texts(_pick(rep_client, id=world.own[3])) == [_own_name(3)]
    # The admin reads the other team's customer: the rep's empty answers are the rules'.
    assert _texts(_pick(admin_client, q="广州")) == ["广州天河南粤食品有限公司"]
    assert _texts(_pick(admin_client, id=world.south)) == ["广州天河南粤食品有限公司"]


def test_bad_page_and_id_values_answer_without_error(app, world, rep_client):
    first = _pick(rep_client, q="杭州拾选")
    for page in ("0", "-1", "abc", "", "1.5"):
        assert _pick(rep_client, q="杭州拾选", page=page) == first, page
    deep = _pick(rep_client, q="杭州拾选", page=str(10**20))
    assert deep == {"results": [], "pagination": {"more": False}}
    for wanted in ("0", "-1", str(10**20), "abc", "1e3", "%", str(world.own[0]) + "abc"):
        assert _pick(rep_client, id=wanted) == {"results": [], "pagination": {"more": False}}
    assert _pick(rep_client, q="x" * 5000)["results"] == []


def test_picker_needs_a_signed_in_user_who_may_list(app, world, rep_client):
    anonymous = app.test_client()
    assert anonymous.get("/pick/customer?q=杭州").status_code == 401
    assert anonymous.get(f"/pick/customer?id={world.own[0]}").status_code == 401
    assert rep_client.get("/pick/nothing?q=杭州").status_code == 404
    assert rep_client.get("/pick/Customer?q=杭州").status_code == 404
    # Integration (an API-only role) may not list customers on screen.
    integration = login_client(app, "Integration")
    assert integration.get("/pick/customer?q=杭州").status_code == 403


def test_adding_a_contact_with_a_picked_customer_saves_it(app, world, rep_client):
    (picked,) = _pick(rep_client, q="hangzhou acme")["results"]
    response = rep_client.post(
        "/contacts/add",
        data={"customer": str(picked["id"]), "name": "林晓", "title": "采购经理"},
        follow_redirects=True,
    )
    assert response.status_code == 200 and response.request.path != "/contacts/add"
    assert _contact_names(app) == {"林晓": world.acme}
    html = rep_client.get(f"/customer/{world.acme}").get_data(as_text=True)
    assert "林晓" in html


def test_a_customer_not_offered_is_refused_next_to_the_field(app, world, rep_client):
    for wanted in (str(world.south), "987654321", str(10**20), "abc", "-5"):
        response = rep_client.post(
            "/contacts/add", data={"customer": wanted, "name": "钱进"}, follow_redirects=True
        )
        html = response.get_data(as_text=True)
        assert response.status_code == 200 and response.request.path == "/contacts/add", wanted
        row = _field_row(html, "customer")
        assert REFUSED in row, (wanted, row)
        assert "广州天河南粤" not in html  # the refused id does not reveal the customer
        assert 'value="钱进"' in html  # what the user typed is kept
    assert _contact_names(app) == {}


def test_list_filter_shows_that_customers_contacts_only(app, world, rep_client):
    with app.app_context():
        session().add_all(
            [
                Contact(customer_id=world.own[0], name="陈静"),
                Contact(customer_id=world.own[0], name="王芳"),
                Contact(customer_id=world.own[1], name="黄伟"),
                Contact(customer_id=world.south, name="周敏"),
            ]
        )
        session().commit()
    html = rep_client.get(f"/contacts/list/?_flt_0_customer={world.own[0]}").get_data(as_text=True)
    assert "陈静" in html and "王芳" in html
    assert "黄伟" not in html and "周敏" not in html
    assert re.search(r"记录数:\s*(<[^>]+>\s*)*2\b", html)
    # Filtering on a customer the rep may not read shows none of its contacts.
    hidden = rep_client.get(f"/contacts/list/?_flt_0_customer={world.south}")
    assert hidden.status_code == 200 and "周敏" not in hidden.get_data(as_text=True)


def test_add_contact_link_of_the_360_page_adds_to_that_customer(app, world, rep_client):
    customer = world.own[5]
    page = rep_client.get(f"/customer/{customer}").get_data(as_text=True)
    link = f"/contacts/add?_flt_0_customer={customer}"
    assert f'href="{link}"' in page
    form = rep_client.get(link)
    assert form.status_code == 200
    assert _selects(form.get_data(as_text=True)) == []  # the link names the customer
    saved = rep_client.post(link, data={"name": "吴磊", "title": "总经理"}, follow_redirects=True)
    assert saved.status_code == 200
    assert _contact_names(app) == {"吴磊": customer}
    assert "吴磊" in rep_client.get(f"/customer/{customer}").get_data(as_text=True)
