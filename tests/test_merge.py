"""Duplicate customers: the pairs the duplicate rules find, their review screen, and merging two
customers with everything that belongs to them."""

from __future__ import annotations

import pytest
from flask import g
from helpers import add_customer, define_field
from plugins_support import install_and_enable
from sqlalchemy import func, select

from crm_core.activities.models import Activity
from crm_core.customers.models import Contact, Customer, Tag
from crm_core.data.duplicate_pairs import JOB_ID, DuplicatePair, find_pairs
from crm_core.data.merge import MergeError, merge_customers
from crm_core.db import session
from crm_core.errors import PermissionDenied
from crm_core.events.models import OutboxEvent
from crm_core.jobs.runner import run_job
from crm_core.lowcode.duplicates import DuplicateRule
from crm_core.security.audit import AuditLog
from crm_core.security.rules import unrestricted
from crm_core.testing.plugin import ROLE_USERS, login_client, user_id

FUZZY_A = "上海某某科技有限公司"
FUZZY_B = "上海某某科技"


def _rules(app, phone_action: str = "warn") -> None:  # type: ignore[no-untyped-def]
    with app.app_context():
        session().add_all(
            [
                DuplicateRule(
                    model="Customer",
                    name="电话相同",
                    field="phone",
                    method="exact",
                    action=phone_action,
                ),
                DuplicateRule(
                    model="Customer", name="邮箱相同", field="email", method="exact", action="warn"
                ),
                DuplicateRule(
                    model="Customer",
                    name="名称相似",
                    field="name",
                    method="fuzzy",
                    threshold=90,
                    action="warn",
                ),
            ]
        )
        session().commit()


def _pairs(app) -> dict[tuple[int, int], tuple[str, int, list[str]]]:  # type: ignore[no-untyped-def]
    with app.app_context():
        rows = session().scalars(select(DuplicatePair)).all()
        out = {
            (r.left_id, r.right_id): (r.status, r.score, sorted(x["rule"] for x in r.reasons))
            for r in rows
        }
        session().rollback()
        return out


def _find(app, **kwargs) -> dict[str, int]:  # type: ignore[no-untyped-def]
    with app.app_context():
        counts = find_pairs(session(), **kwargs)
        session().commit()
        return counts


def test_pairs_are_found_by_phone_e_mail_and_similar_name_but_not_for_distinct_customers(app):
    _rules(app)
    a = add_customer(app, name=FUZZY_A, city="上海市")
    b = add_customer(app, name=FUZZY_B, city="上海市")
    c = add_customer(app, name="杭州西湖茶业有限公司", phone="13812345678")
    d = add_customer(app, name="西湖龙井贸易", phone="138 1234 5678")
    e = add_customer(app, name="北京海淀中科软件有限公司", email="info@zhongke.cn")
    f = add_customer(app, name="中科软件北京分公司", email=" info@zhongke.cn ")
    add_customer(app, name="上海某某电子有限公司", phone="13900000001")  # similar, not alike
    add_customer(app, name="广州白云物流有限公司", phone="13900000002", email="a@baiyun.cn")
    add_customer(app, name="已归档的西湖茶业", phone="13812345678", active=False)

    counts = _find(app)

    assert _pairs(app) == {
        (a, b): ("open", 100, ["名称相似"]),
        (c, d): ("open", 100, ["电话相同"]),
        (e, f): ("open", 100, ["邮箱相同"]),
    }
    assert counts["new"] == 3


def test_a_dismissed_pair_stays_away_and_an_archived_customer_drops_out(app, admin_client):
    _rules(app)
    a = add_customer(app, name=FUZZY_A)
    b = add_customer(app, name=FUZZY_B)
    c = add_customer(app, name="杭州西湖茶业有限公司", phone="13812345678")
    d = add_customer(app, name="西湖龙井贸易", phone="13812345678")
    with app.app_context():
        assert run_job(JOB_ID).counts["full"] == 1  # type: ignore[union-attr]
        session().commit()
        pair = session().scalar(select(DuplicatePair).where(DuplicatePair.left_id == a))
        pk = pair.id

    dismissed = admin_client.post(f"/duplicates/{pk}/dismiss", follow_redirects=True)
    assert dismissed.status_code == 200
    assert f'data-pair="{pk}"' not in dismissed.get_data(as_text=True)  # no longer listed
    with app.app_context():
        session().get(Customer, d).active = False
        session().commit()
        again = run_job(JOB_ID)  # since the last run: only the archived customer is read
        session().commit()
        assert again is not None and again.counts["full"] == 0  # type: ignore[index]

    assert _pairs(app) == {(a, b): ("dismissed", 100, ["名称相似"])}
    _find(app, full=True)
    assert _pairs(app) == {(a, b): ("dismissed", 100, ["名称相似"])}
    listed = admin_client.get("/duplicates/").get_data(as_text=True)
    assert 'id="crm-no-duplicates"' in listed and c < d


def test_a_changed_customer_is_compared_with_the_others_on_the_next_run(app):
    _rules(app)
    a = add_customer(app, name="苏州工业园区精密模具有限公司", phone="13700000001")
    with app.app_context():
        run_job(JOB_ID)
        session().commit()
    b = add_customer(app, name="苏州工业园区精密模具", phone="13700000002")
    with app.app_context():
        run = run_job(JOB_ID)
        session().commit()
        assert run is not None and run.counts == {  # type: ignore[comparison-overlap]
            "rules": 3,
            "full": 0,
            "found": 1,
            "new": 1,
            "removed": 0,
        }
    assert _pairs(app) == {(a, b): ("open", 100, ["名称相似"])}


def _seed_pair(app, owner: str = "Admin") -> tuple[int, int]:  # type: ignore[no-untyped-def]
    """Two customers alike by name, each with a contact, a follow-up and a tag."""
    owner_id = user_id(app, owner)
    left = add_customer(
        app, name=FUZZY_A, city="上海市", phone="021-64001234", owner_id=owner_id, code="CMRG00001"
    )
    right = add_customer(
        app,
        name=FUZZY_B,
        email="sales@mouimou.cn",
        industry="信息技术",
        owner_id=owner_id,
        code="CMRG00002",
    )
    with app.app_context():
        for pk, person, tag in ((left, "王伟", "重点客户"), (right, "李娜", "展会2026")):
            session().add(Contact(customer_id=pk, name=person, mobile="13800138000"))
            session().add(Activity(customer_id=pk, subject=f"拜访{person}", owner_id=owner_id))
            customer = session().get(Customer, pk)
            customer.tags.append(Tag(name=tag))
        session().commit()
    return left, right


def test_the_review_screen_lists_compares_and_merges_in_chinese(app, admin_client):
    _rules(app)
    define_field(admin_client, name="grade", kind="text", label_zh="信用评级")
    left, right = _seed_pair(app)
    with app.app_context():
        customer = session().get(Customer, right)
        customer.custom = {"grade": "AA"}
        session().commit()

    found = admin_client.post("/duplicates/find", follow_redirects=True)
    page = found.get_data(as_text=True)
    assert found.status_code == 200
    assert FUZZY_A in page and FUZZY_B in page and "名称相似" in page
    with app.app_context():
        pk = session().scalar(select(DuplicatePair.id))

    compare = admin_client.get(f"/duplicates/{pk}").get_data(as_text=True)
    assert "信用评级" in compare and "AA" in compare  # custom field with its label
    assert "电话" in compare and "+862164001234" in compare  # admins read phones in full
    assert 'name="keep__email"' in compare and 'name="survivor"' in compare

    merged = admin_client.post(
        f"/duplicates/{pk}/merge",
        data={"survivor": "right", "keep__name": "left", "keep__phone": "left"},
    )
    assert merged.status_code == 302 and merged.location.endswith(f"/customer/{right}")
    with app.app_context():
        survivor = session().get(Customer, right)
        loser = session().get(Customer, left)
        assert (survivor.name, survivor.phone, survivor.email) == (
            FUZZY_A,
            "+862164001234",
            "sales@mouimou.cn",
        )
        assert survivor.city == "上海市" and survivor.custom == {"grade": "AA"}
        assert sorted(t.name for t in survivor.tags) == ["展会2026", "重点客户"]
        assert (loser.active, loser.merged_into_id) == (False, right)
        contacts = session().scalars(select(Contact.customer_id)).all()
        activities = session().scalars(select(Activity.customer_id)).all()
        assert contacts == [right, right] and activities == [right, right]
        pair = session().get(DuplicatePair, pk)
        assert (pair.status, pair.decided_by_id) == ("merged", user_id(app, "Admin"))
        event = session().scalar(select(OutboxEvent).where(OutboxEvent.type == "customer.merged"))
        assert event.payload["survivor"] == right and event.payload["loser"] == left
        session().rollback()

    page_of_loser = admin_client.get(f"/customer/{left}").get_data(as_text=True)
    assert 'id="crm-merged-into"' in page_of_loser and f'href="/customer/{right}"' in page_of_loser
    assert FUZZY_A not in admin_client.get("/duplicates/").get_data(as_text=True)


def test_the_survivor_takes_the_losers_phone_under_a_refusing_phone_rule(app):
    _rules(app, phone_action="block")
    survivor = add_customer(app, name=FUZZY_A)
    loser = add_customer(app, name=FUZZY_B, phone="13812345678")
    with app.app_context():
        merge_customers(session().get(Customer, survivor), session().get(Customer, loser))
        session().commit()
        assert session().get(Customer, survivor).phone == "+8613812345678"


def test_a_sales_rep_cannot_merge_a_customer_they_cannot_write(app):
    own = add_customer(app, name=FUZZY_A, owner_id=user_id(app, "Sales Rep"))
    other = add_customer(app, name=FUZZY_B, owner_id=user_id(app, "Sales Manager"))
    with app.test_request_context("/duplicates/"):
        rep = app.appbuilder.sm.find_user(username=ROLE_USERS["Sales Rep"])  # type: ignore[attr-defined]
        g.user = g._login_user = rep
        with unrestricted():
            survivor, loser = session().get(Customer, own), session().get(Customer, other)
        with pytest.raises(PermissionDenied) as refused:
            merge_customers(survivor, loser)
        session().rollback()
    assert FUZZY_B in str(refused.value) and refused.value.status == 403
    with app.app_context():
        assert session().get(Customer, other).active is True
    rep_client = login_client(app, "Sales Rep")
    assert rep_client.get("/duplicates/").status_code != 200  # not a rep's screen


def test_a_manager_lists_only_pairs_of_customers_they_can_read(app):
    _rules(app)
    _seed_pair(app, owner="Admin")  # customers the manager cannot see
    add_customer(app, name="杭州西湖茶业有限公司", owner_id=user_id(app, "Sales Manager"))
    add_customer(app, name="杭州西湖茶业", owner_id=user_id(app, "Sales Manager"))
    _find(app)
    listed = login_client(app, "Sales Manager").get("/duplicates/").get_data(as_text=True)
    assert "杭州西湖茶业有限公司" in listed and FUZZY_A not in listed


# -------------------------------------------------------------- with a plugin's records


def _plugin_seed(app, bolted: bool = False):  # type: ignore[no-untyped-def]
    from crm_testplugin import BOLTED_NAME
    from crm_testplugin.models import Gadget

    ids = _seed_pair(app)
    with app.app_context():
        for pk in ids:
            session().add(Gadget(name=f"gadget-{pk}", customer_id=pk))
        if bolted:
            session().add(Gadget(name=BOLTED_NAME, customer_id=ids[1]))
        session().commit()
    return ids


def _moves(app, model: str, left: int, right: int) -> list[int]:  # type: ignore[no-untyped-def]
    """Ids of the records of ``model`` with an audit entry of their move from right to left."""
    with app.app_context():
        rows = session().scalars(
            select(AuditLog).where(AuditLog.model == model, AuditLog.operation == "update")
        )
        return sorted(r.record_id for r in rows if r.changes.get("customer_id") == [right, left])


def test_merging_moves_every_record_to_the_survivor_with_an_audit_entry_each(plugin_site):
    from crm_testplugin.models import Gadget

    site = plugin_site("testplugin")
    app = site.start()
    install_and_enable(app, "testplugin")
    admin = site.client(app)
    left, right = _plugin_seed(app)
    with app.app_context():
        pair = DuplicatePair(model="Customer", left_id=left, right_id=right, score=100)
        session().add(pair)
        session().commit()
        pk = pair.id

    merged = admin.post(f"/duplicates/{pk}/merge", data={"survivor": "left"})
    assert merged.status_code == 302

    with app.app_context():
        for model in (Contact, Activity, Gadget):
            assert set(session().scalars(select(model.customer_id))) == {left}
        moved = {
            "contact": session().scalars(select(Contact.id).where(Contact.name == "李娜")).all(),
            "activity": session()
            .scalars(select(Activity.id).where(Activity.subject == "拜访李娜"))
            .all(),
            "tp_gadget": session()
            .scalars(select(Gadget.id).where(Gadget.name == f"gadget-{right}"))
            .all(),
        }
        assert session().get(Customer, right).merged_into_id == left
        session().rollback()
    for model, ids in moved.items():
        assert len(ids) == 1 and _moves(app, model, left, right) == ids, model


def test_a_plugin_failing_to_move_its_records_leaves_everything_unmerged(plugin_site):
    from crm_testplugin.models import Gadget

    site = plugin_site("testplugin")
    app = site.start()
    install_and_enable(app, "testplugin")
    site.client(app)  # makes the admin who owns the customers
    left, right = _plugin_seed(app, bolted=True)

    with app.app_context(), pytest.raises(MergeError) as failed:
        try:
            merge_customers(session().get(Customer, left), session().get(Customer, right))
        finally:
            session().rollback()

    assert "testplugin" in str(failed.value)
    with app.app_context():
        assert session().get(Customer, right).active is True
        assert session().get(Customer, right).merged_into_id is None
        for model in (Contact, Activity, Gadget):
            owners = session().execute(
                select(model.customer_id, func.count()).group_by(model.customer_id)
            )
            assert dict(owners.all()) == (
                {left: 1, right: 2} if model is Gadget else {left: 1, right: 1}
            )
        session().rollback()
    for model in ("contact", "activity", "tp_gadget"):
        assert _moves(app, model, left, right) == []
