"""Privacy (PIPL): consent records, a person's data export and erasure by anonymisation, from
the screens, the API and the command line, each audited."""

from __future__ import annotations

import json
import re
import types
from dataclasses import dataclass
from datetime import date, datetime, timedelta

import pytest
from click.testing import CliRunner
from flask import Flask
from flask.cli import ScriptInfo
from flask.testing import FlaskClient
from helpers import add_customer
from sqlalchemy import func, select

from crm_core.activities.models import Activity
from crm_core.cli import main
from crm_core.customers.models import Contact, Customer
from crm_core.db import session, utcnow
from crm_core.events.models import OutboxEvent
from crm_core.hookimpl import hookimpl
from crm_core.privacy import has_consent
from crm_core.privacy.models import Consent
from crm_core.security.audit import AuditLog
from crm_core.testing.plugin import user_id

PHONE, PHONE_SHOWN = "+8613812345678", "138 1234 5678"
EMAIL = "zhou.min@example.cn"
NAME = "周敏"
MOBILE = "+8613987654321"
WECHAT = "zhoumin_wx"
SOURCE = "2026 上海工博会登记表"


@dataclass
class Person:
    """A person customer of the rep, with a contact (her assistant), follow-ups and consents."""

    customer: int
    code: str
    contact: int
    activities: list[int]
    consents: list[int]


@pytest.fixture
def person(app: Flask) -> Person:
    rep = user_id(app, "Sales Rep")
    with app.app_context():
        s = session()
        customer = Customer(
            name=NAME,
            kind="person",
            code="P-2026-001",
            phone="13812345678",
            email=EMAIL,
            province="上海市",
            city="上海市",
            district="徐汇区",
            address="漕溪北路 88 号 12 楼",
            industry="制造业",
            notes="喜欢下午联系",
            owner_id=rep,
        )
        s.add(customer)
        s.flush()
        contact = Contact(
            customer_id=customer.id,
            name="周敏助理李雪",
            mobile="13987654321",
            email="li.xue@example.cn",
            wechat=WECHAT,
            birthday=date(1990, 5, 17),
            notes="只接工作日电话",
        )
        s.add(contact)
        s.flush()
        activities = [
            Activity(
                kind="call",
                subject="电话回访周敏的装修需求",
                body="周敏说下月搬家",
                customer_id=customer.id,
                owner_id=rep,
                occurred_at=datetime(2026, 3, 2, 10, 30),
            ),
            Activity(
                kind="visit",
                subject="拜访李雪确认安装时间",
                customer_id=customer.id,
                contact_id=contact.id,
                owner_id=rep,
                occurred_at=datetime(2026, 3, 9, 14, 0),
            ),
        ]
        s.add_all(activities)
        consents = [
            Consent(
                customer_id=customer.id,
                purpose="marketing",
                channel="paper",
                granted_at=datetime(2026, 3, 1, 9, 0),
                source=SOURCE,
                note="现场签字",
            ),
            Consent(
                customer_id=customer.id,
                contact_id=contact.id,
                purpose="data_processing",
                channel="wechat",
                granted_at=datetime(2026, 3, 9, 15, 0),
                source="微信小程序授权页",
            ),
        ]
        s.add_all(consents)
        s.commit()
        return Person(
            customer=customer.id,
            code=customer.code,
            contact=contact.id,
            activities=[a.id for a in activities],
            consents=[c.id for c in consents],
        )


def _crm(app: Flask, *args: str):  # type: ignore[no-untyped-def]
    return CliRunner().invoke(main, list(args), obj=ScriptInfo(create_app=lambda: app))


def _entries(app: Flask, operation: str | None = None) -> list[AuditLog]:
    with app.app_context():
        query = select(AuditLog).order_by(AuditLog.id)
        if operation is not None:
            query = query.where(AuditLog.operation == operation)
        rows = list(session().scalars(query))
        session().expunge_all()
        return rows


def _flashes(client: FlaskClient) -> str:
    """The page the client lands on (messages flashed by the previous request included)."""
    return client.get("/").get_data(as_text=True)


# -- consents ---------------------------------------------------------------------------------


def test_consent_recorded_and_withdrawn_through_the_api_is_audited_and_on_the_360_page(
    app, person, rep_client
):
    created = rep_client.post(
        "/api/v1/consent/",
        json={
            "customer_id": person.customer,
            "purpose": "cross_border_transfer",
            "channel": "web",
            "source": "官网隐私政策弹窗 v3",
        },
    )
    assert created.status_code == 201, created.get_json()
    pk = created.get_json()["id"]
    assert created.get_json()["result"]["granted_at"]  # left out: now

    page = rep_client.get(f"/customer/{person.customer}").get_data(as_text=True)
    consents = page.split('id="crm-consents"')[1].split("</table>")[0]
    assert "跨境传输" in consents and "官网隐私政策弹窗 v3" in consents
    assert "营销推广" in consents and SOURCE in consents  # the fixture's
    assert consents.count("crm-consent-valid") == 3

    withdrawn = rep_client.post(f"/api/v1/consent/{pk}/withdraw")
    assert withdrawn.status_code == 200, withdrawn.get_json()
    assert withdrawn.get_json()["result"]["withdrawn_at"]
    again = rep_client.post(f"/api/v1/consent/{pk}/withdraw")
    assert again.status_code == 409
    assert "已撤回" in json.dumps(again.get_json(), ensure_ascii=False)

    page = rep_client.get(f"/customer/{person.customer}").get_data(as_text=True)
    consents = page.split('id="crm-consents"')[1].split("</table>")[0]
    assert consents.count("crm-consent-withdrawn") == 1

    entries = [e for e in _entries(app) if (e.model, e.record_id) == ("consent", pk)]
    assert [(e.operation, e.channel, e.username) for e in entries] == [
        ("create", "api", "t_rep"),
        ("update", "api", "t_rep"),
    ]
    assert entries[0].changes["purpose"] == [None, "cross_border_transfer"]
    assert list(entries[1].changes) == ["withdrawn_at"]
    assert entries[1].changes["withdrawn_at"][0] is None


def test_consent_screen_adds_lists_and_withdraws(app, person, rep_client):
    form = rep_client.get(f"/consents/add?_flt_0_customer={person.customer}")
    assert form.status_code == 200
    html = form.get_data(as_text=True)
    assert "向第三方提供" in html and "用户画像" in html and "个人信息处理" in html
    added = rep_client.post(
        f"/consents/add?_flt_0_customer={person.customer}",
        data={
            "purpose": "profiling",
            "channel": "in_person",
            "granted_at": "2026-04-01 10:00:00",
            "source": "门店会员登记表",
        },
        follow_redirects=True,
    )
    assert added.status_code == 200
    with app.app_context():
        consent = session().scalar(select(Consent).where(Consent.purpose == "profiling"))
        assert consent is not None and consent.customer_id == person.customer
        assert consent.granted_at == datetime(2026, 4, 1, 10, 0)
        pk = consent.id

    listed = rep_client.get("/consents/list/").get_data(as_text=True)
    assert "用户画像" in listed and "当面" in listed and "门店会员登记表" in listed

    done = rep_client.post(
        "/consents/action_post",
        data={"action": "withdraw", "rowid": str(pk)},
        follow_redirects=True,
    )
    assert done.status_code == 200
    with app.app_context():
        assert session().get(Consent, pk).withdrawn_at is not None
    update = [
        e for e in _entries(app) if (e.model, e.record_id, e.operation) == ("consent", pk, "update")
    ]
    assert len(update) == 1 and update[0].channel == "web"
    assert list(update[0].changes) == ["withdrawn_at"]


def test_consent_values_are_checked(app, person, admin_client):
    other = add_customer(app, name="苏州工业园区恒通电子有限公司")
    bad = admin_client.post(
        "/api/v1/consent/",
        json={"customer_id": person.customer, "purpose": "spam", "channel": "web"},
    )
    assert bad.status_code == 422 and "purpose" in bad.get_json()["message"]
    elsewhere = admin_client.post(
        "/api/v1/consent/",
        json={
            "customer_id": other,
            "contact_id": person.contact,
            "purpose": "marketing",
            "channel": "web",
        },
    )
    assert elsewhere.status_code == 422
    assert "contact_id" in elsewhere.get_json()["message"]


def test_has_consent(app, person):
    with app.app_context():
        customer = session().get(Customer, person.customer)
        contact = session().get(Contact, person.contact)
        assert has_consent(customer, "marketing")
        assert not has_consent(customer, "data_processing")  # that one is the contact's
        assert has_consent(contact, "data_processing")
        assert not has_consent(contact, "marketing")
        assert not has_consent(customer, "profiling")
        marketing = session().get(Consent, person.consents[0])
        marketing.withdrawn_at = utcnow()
        session().commit()
        assert not has_consent(customer, "marketing")
        session().add(
            Consent(
                customer_id=customer.id,
                purpose="profiling",
                channel="web",
                granted_at=utcnow() - timedelta(days=1),
                active=False,  # archived
            )
        )
        session().commit()
        assert not has_consent(customer, "profiling")
        with pytest.raises(ValueError):
            has_consent(customer, "everything")


def test_consents_follow_the_customer_in_the_record_rules(app, rep_client):
    """A rep neither sees nor withdraws the consents of a customer they cannot see."""
    other_rep = user_id(app, "Sales Manager")
    hidden = add_customer(app, name="赵磊", kind="person", owner_id=other_rep)
    with app.app_context():
        consent = Consent(customer_id=hidden, purpose="marketing", channel="sms", source="短信回复")
        session().add(consent)
        session().commit()
        pk = consent.id
    assert rep_client.get(f"/api/v1/consent/{pk}").status_code == 404
    assert rep_client.get("/api/v1/consent/").get_json()["count"] == 0
    assert rep_client.get(f"/consents/show/{pk}").status_code == 404
    assert "短信回复" not in rep_client.get("/consents/list/").get_data(as_text=True)
    assert rep_client.post(f"/api/v1/consent/{pk}/withdraw").status_code == 404
    assert (
        rep_client.post(
            "/api/v1/consent/",
            json={"customer_id": hidden, "purpose": "marketing", "channel": "web"},
        ).status_code
        == 422
    )
    with app.app_context():
        assert session().get(Consent, pk).withdrawn_at is None


def test_consents_menu_follows_permissions(app, rep_client, login):
    assert "/consents/list/" in rep_client.get("/").get_data(as_text=True)
    assert "/consents/list/" in login("Service Agent").get("/").get_data(as_text=True)
    reader = login("Read-only")
    assert "/consents/list/" not in reader.get("/").get_data(as_text=True)
    assert reader.get("/api/v1/consent/").status_code in (401, 403)
    agent = login("Service Agent")
    refused = agent.post(
        "/api/v1/consent/", json={"customer_id": 1, "purpose": "marketing", "channel": "web"}
    )
    assert refused.status_code in (401, 403)


# -- export -----------------------------------------------------------------------------------


def _export(client: FlaskClient, path: str):  # type: ignore[no-untyped-def]
    response = client.post(path)
    assert response.status_code == 200, response.status_code
    return response, json.loads(response.get_data(as_text=True))


def test_export_is_a_json_download_of_everything_about_the_person(app, person, admin_client):
    page = admin_client.get(f"/customer/{person.customer}").get_data(as_text=True)
    assert "导出个人数据" in page
    assert f"/privacy/customer/{person.customer}/export" in page
    assert f"/privacy/contact/{person.contact}/export" in page

    response, document = _export(admin_client, f"/privacy/customer/{person.customer}/export")
    assert response.mimetype == "application/json"
    disposition = response.headers["Content-Disposition"]
    assert disposition.startswith("attachment")
    assert "filename=personal-data-P-2026-001.json" in disposition

    assert document["format"] == "crm-personal-data" and document["format_version"] == 1
    assert document["exported_by"] == "t_admin" and document["channel"] == "web"
    assert document["subject"] == {
        "type": "customer",
        "id": person.customer,
        "customer_id": person.customer,
        "customer_code": "P-2026-001",
    }
    customer = document["customer"]
    assert (customer["name"], customer["phone"], customer["email"]) == (NAME, PHONE, EMAIL)
    assert customer["address"] == "漕溪北路 88 号 12 楼"
    [contact] = document["contacts"]
    assert (contact["mobile"], contact["wechat"], contact["birthday"]) == (
        MOBILE,
        WECHAT,
        "1990-05-17",
    )
    assert [a["subject"] for a in document["activities"]] == [
        "电话回访周敏的装修需求",
        "拜访李雪确认安装时间",
    ]
    assert {c["source"] for c in document["consents"]} == {SOURCE, "微信小程序授权页"}
    assert document["history"][0]["operation"] == "create"
    assert document["history"][0]["changes"]["phone"] == [None, PHONE]

    [entry] = _entries(app, "export")
    assert (entry.model, entry.record_id, entry.username, entry.channel) == (
        "customer",
        person.customer,
        "t_admin",
        "web",
    )
    history = admin_client.get(f"/customer/{person.customer}").get_data(as_text=True)
    assert "个人数据导出" in history.split('id="crm-history"')[1]


def test_a_contact_exports_only_its_own_data(app, admin_client):
    company = add_customer(app, name="杭州滨江启明软件有限公司", code="HZ-QM-01")
    with app.app_context():
        s = session()
        wang = Contact(customer_id=company, name="王芳", mobile="13912345678")
        li = Contact(customer_id=company, name="李军", mobile="13700001111")
        s.add_all([wang, li])
        s.flush()
        s.add_all(
            [
                Activity(
                    kind="call", subject="和王芳确认报价", customer_id=company, contact_id=wang.id
                ),
                Activity(
                    kind="call", subject="和李军确认发票", customer_id=company, contact_id=li.id
                ),
                Consent(
                    customer_id=company, contact_id=wang.id, purpose="marketing", channel="email"
                ),
            ]
        )
        s.commit()
        wang_id = wang.id
    response, document = _export(admin_client, f"/privacy/contact/{wang_id}/export")
    assert (
        f"filename=personal-data-HZ-QM-01-contact-{wang_id}.json"
        in response.headers["Content-Disposition"]
    )
    assert document["subject"]["type"] == "contact"
    assert document["contact"]["mobile"] == "+8613912345678"
    assert [a["subject"] for a in document["activities"]] == ["和王芳确认报价"]
    assert [c["channel"] for c in document["consents"]] == ["email"]
    assert "李军" not in json.dumps(document, ensure_ascii=False)
    [entry] = _entries(app, "export")
    assert (entry.model, entry.record_id) == ("contact", wang_id)

    # A company is not a person: its export is refused with a message, nothing is written.
    refused = admin_client.post(f"/privacy/customer/{company}/export")
    assert refused.status_code == 302 and refused.location.endswith(f"/customer/{company}")
    assert "是企业" in _flashes(admin_client)
    assert len(_entries(app, "export")) == 1


def test_export_is_refused_without_permission_and_hidden_customers_are_404(
    app, person, rep_client, login
):
    refused = rep_client.post(f"/privacy/customer/{person.customer}/export")
    assert refused.status_code in (302, 403)
    if refused.status_code == 302:
        assert "/login" in refused.location
    assert "导出个人数据" not in rep_client.get(f"/customer/{person.customer}").get_data(
        as_text=True
    )
    manager = login("Sales Manager")  # may export, but not see the rep's customer
    assert manager.post(f"/privacy/customer/{person.customer}/export").status_code == 404
    assert manager.post(f"/privacy/contact/{person.contact}/export").status_code == 404
    assert manager.post("/privacy/customer/99999999999/export").status_code == 404
    own = add_customer(app, name="孙丽", kind="person", owner_id=user_id(app, "Sales Manager"))
    _response, document = _export(manager, f"/privacy/customer/{own}/export")
    assert document["customer"]["name"] == "孙丽"
    assert [(e.record_id, e.username) for e in _entries(app, "export")] == [(own, "t_manager")]


def test_cli_export_writes_the_same_document(app, person, admin_client, tmp_path):
    _response, web = _export(admin_client, f"/privacy/customer/{person.customer}/export")
    out = tmp_path / "zhou.json"
    result = _crm(app, "privacy", "export", "--customer", str(person.customer), "-o", str(out))
    assert result.exit_code == 0, result.output
    cli = json.loads(out.read_text(encoding="utf-8"))
    for key in ("format", "format_version", "subject", "customer", "contacts", "activities"):
        assert cli[key] == web[key], key
    assert cli["consents"] == web["consents"] and cli["modules"] == web["modules"]
    assert cli["channel"] == "cli" and cli["exported_by"] is None
    assert [(e.channel, e.record_id) for e in _entries(app, "export")] == [
        ("web", person.customer),
        ("cli", person.customer),
    ]
    printed = _crm(
        app,
        "privacy",
        "export",
        "--customer",
        str(person.customer),
        "--contact",
        str(person.contact),
    )
    assert printed.exit_code == 0, printed.output
    assert json.loads(printed.output)["contact"]["wechat"] == WECHAT
    company = add_customer(app, name="北京海淀中科软件有限公司")
    refused = _crm(app, "privacy", "export", "--customer", str(company))
    assert refused.exit_code != 0 and "是企业" in refused.output


def test_plugins_add_their_records_to_the_export_and_a_failing_one_is_left_out(
    app, person, admin_client
):
    @hookimpl
    def export_personal_data(customer, contact):  # type: ignore[no-untyped-def]
        return {
            "orders": [{"no": "SO-2026-0042", "customer_id": customer.id, "at": date(2026, 3, 3)}]
        }

    @hookimpl(specname="export_personal_data")
    def broken(customer, contact):  # type: ignore[no-untyped-def]
        raise RuntimeError("the shop is down")

    registry = app.extensions["crm"]
    good = types.ModuleType("privacy_test_orders")
    good.export_personal_data = export_personal_data  # type: ignore[attr-defined]
    bad = types.ModuleType("privacy_test_broken")
    bad.export_personal_data = broken  # type: ignore[attr-defined]
    registry.register_core(good, "privacy-test-orders")
    registry.register_core(bad, "privacy-test-broken")
    try:
        _response, document = _export(admin_client, f"/privacy/customer/{person.customer}/export")
    finally:
        registry.pm.unregister(name="core:privacy-test-orders")
        registry.pm.unregister(name="core:privacy-test-broken")
        registry.runtime_errors.clear()
    assert document["modules"] == {
        "core": {
            "orders": [{"no": "SO-2026-0042", "customer_id": person.customer, "at": "2026-03-03"}]
        }
    }


# -- erasure ----------------------------------------------------------------------------------


def _audit_text(app: Flask) -> str:
    with app.app_context():
        rows = session().execute(select(AuditLog.changes)).scalars().all()
        return json.dumps(rows, ensure_ascii=False)


PERSONAL_VALUES = (
    NAME,
    PHONE,
    EMAIL,
    "漕溪北路",
    "喜欢下午联系",
    "周敏助理李雪",
    MOBILE,
    "li.xue@example.cn",
    WECHAT,
    "1990-05-17",
    "只接工作日电话",
    "装修需求",
    "下月搬家",
    "确认安装时间",
    SOURCE,
    "现场签字",
    "微信小程序授权页",
)


@pytest.mark.crm_audit_unchecked  # the erasure redacts the history on purpose
def test_admin_erases_a_person_from_the_360_page(app, person, admin_client):
    # Some history first: a change of the phone through the API keeps the old and new values.
    changed = admin_client.put(f"/api/v1/customer/{person.customer}", json={"phone": "13800001111"})
    assert changed.status_code == 200
    with app.app_context():
        session().get(Customer, person.customer).phone = PHONE
        session().commit()
    assert PHONE in _audit_text(app) and "+8613800001111" in _audit_text(app)

    page = admin_client.get(f"/customer/{person.customer}").get_data(as_text=True)
    assert f"/privacy/customer/{person.customer}/erase" in page and "删除个人信息" in page

    confirm = admin_client.post(f"/privacy/customer/{person.customer}/erase")
    assert confirm.status_code == 200
    html = confirm.get_data(as_text=True)
    assert "无法撤销" in html and 'name="confirm" value="yes"' in html and NAME in html
    with app.app_context():
        assert session().get(Customer, person.customer).phone == PHONE  # nothing yet

    done = admin_client.post(
        f"/privacy/customer/{person.customer}/erase",
        data={"confirm": "yes"},
        follow_redirects=True,
    )
    assert done.status_code == 200
    html = done.get_data(as_text=True)
    assert "客户 P-2026-001 的个人信息已删除" in html
    assert f"已匿名化 #{person.customer}" in html and 'id="crm-erased"' in html
    assert f"/privacy/customer/{person.customer}/erase" not in html  # not twice
    assert NAME not in html and PHONE_SHOWN not in html

    with app.app_context():
        s = session()
        customer = s.get(Customer, person.customer)
        assert customer.name == f"已匿名化 #{person.customer}"
        assert customer.code == "P-2026-001" and customer.active
        assert (customer.province, customer.city, customer.industry) == (
            "上海市",
            "上海市",
            "制造业",
        )
        for field in ("phone", "email", "address", "district", "notes", "website", "uscc"):
            assert getattr(customer, field) is None, field
        contact = s.get(Contact, person.contact)
        assert contact.name == f"已匿名化 #{person.contact}" and contact.active
        for field in ("mobile", "phone", "email", "wechat", "birthday", "notes"):
            assert getattr(contact, field) is None, field
        activities = s.scalars(select(Activity).order_by(Activity.id)).all()
        assert [
            (a.kind, a.occurred_at, a.owner_id, a.customer_id, a.active) for a in activities
        ] == [
            (
                "call",
                datetime(2026, 3, 2, 10, 30),
                user_id(app, "Sales Rep"),
                person.customer,
                True,
            ),
            (
                "visit",
                datetime(2026, 3, 9, 14, 0),
                user_id(app, "Sales Rep"),
                person.customer,
                True,
            ),
        ]
        assert {a.subject for a in activities} == {"内容已删除（个人信息已匿名化）"}
        assert {a.body for a in activities} == {None}
        consents = s.scalars(select(Consent).order_by(Consent.id)).all()
        assert [(c.purpose, c.channel, c.granted_at, c.source, c.note) for c in consents] == [
            ("marketing", "paper", datetime(2026, 3, 1, 9, 0), None, None),
            ("data_processing", "wechat", datetime(2026, 3, 9, 15, 0), None, None),
        ]
        assert s.scalar(select(func.count()).select_from(Activity)) == 2
        events = s.scalars(select(OutboxEvent.type).where(OutboxEvent.type.like("%.erased"))).all()
        assert sorted(events) == ["contact.erased", "customer.erased"]
        outbox = json.dumps(
            s.scalars(
                select(OutboxEvent.payload)
                .where(OutboxEvent.type == "customer.updated")
                .order_by(OutboxEvent.id)
            ).all()[-1],
            ensure_ascii=False,
        )
        assert PHONE not in outbox and EMAIL not in outbox  # the erasing write's own event

    audit = _audit_text(app)
    for value in (*PERSONAL_VALUES, "+8613800001111"):
        assert value not in audit, value
    erased = _entries(app, "erase")
    assert [(e.model, e.record_id, e.username, e.channel) for e in erased] == [
        ("customer", person.customer, "t_admin", "web"),
        ("contact", person.contact, "t_admin", "web"),
    ]
    assert erased[0].changes["phone"] == ["***", None]
    assert erased[0].changes["name"] == ["***", f"已匿名化 #{person.customer}"]
    history = admin_client.get(f"/customer/{person.customer}").get_data(as_text=True)
    history = history.split('id="crm-history"')[1]
    assert "个人信息已删除" in history and "***" in history

    # Erased is erased: a second time is refused with a message, from the screen and the CLI.
    again = admin_client.post(f"/privacy/customer/{person.customer}/erase", data={"confirm": "yes"})
    assert again.status_code == 302
    assert "该客户的个人信息已经删除过" in _flashes(admin_client)
    cli = _crm(app, "privacy", "erase", "--customer", str(person.customer), "--yes")
    assert cli.exit_code != 0 and "已经删除过" in cli.output
    assert len(_entries(app, "erase")) == 2

    # The export now holds the anonymised record only.
    _response, document = _export(admin_client, f"/privacy/customer/{person.customer}/export")
    text = json.dumps(document, ensure_ascii=False)
    for value in PERSONAL_VALUES:
        assert value not in text, value


@pytest.mark.crm_audit_unchecked
def test_erased_values_cannot_be_revealed(app, person, admin_client, rep_client):
    admin_client.post(f"/privacy/customer/{person.customer}/erase", data={"confirm": "yes"})
    page = rep_client.get(f"/customer/{person.customer}").get_data(as_text=True)
    assert f"/sensitive/Customer/{person.customer}/phone" not in page
    assert "138****" not in page
    answer = rep_client.post(f"/sensitive/Customer/{person.customer}/phone")
    assert answer.status_code == 200
    assert answer.get_json() == {"value": None, "display": ""}


def test_a_company_cannot_be_erased_and_a_rep_cannot_erase(
    app, person, rep_client, admin_client, login
):
    company = add_customer(app, name="宁波北仑东方物流有限公司", code="NB-DF-01")
    page = admin_client.get(f"/customer/{company}").get_data(as_text=True)
    assert f"/privacy/customer/{company}/erase" not in page  # only its contacts have one
    refused = admin_client.post(f"/privacy/customer/{company}/erase", data={"confirm": "yes"})
    assert refused.status_code == 302
    assert "是企业" in _flashes(admin_client)
    cli = _crm(app, "privacy", "erase", "--customer", str(company), "--yes")
    assert cli.exit_code != 0 and "是企业" in cli.output

    for client in (rep_client, login("Sales Manager")):
        answer = client.post(f"/privacy/customer/{person.customer}/erase", data={"confirm": "yes"})
        assert answer.status_code in (302, 403)
        if answer.status_code == 302:
            assert "/login" in answer.location
        answer = client.post(f"/privacy/contact/{person.contact}/erase", data={"confirm": "yes"})
        assert answer.status_code in (302, 403)
    assert "删除个人信息" not in rep_client.get(f"/customer/{person.customer}").get_data(
        as_text=True
    )
    with app.app_context():
        assert session().get(Customer, person.customer).phone == PHONE
    assert _entries(app, "erase") == []


@pytest.mark.crm_audit_unchecked
def test_cli_erases_a_contact_only_with_yes(app, person):
    refused = _crm(app, "privacy", "erase", "--contact", str(person.contact))
    assert refused.exit_code != 0 and "--yes" in refused.output
    with app.app_context():
        assert session().get(Contact, person.contact).mobile == MOBILE
    both = _crm(app, "privacy", "erase", "--contact", "1", "--customer", "1", "--yes")
    assert both.exit_code != 0

    done = _crm(app, "privacy", "erase", "--contact", str(person.contact), "--yes")
    assert done.exit_code == 0, done.output
    assert f"contact {person.contact} erased: 1 follow-ups, 1 consents" in done.output
    with app.app_context():
        s = session()
        contact = s.get(Contact, person.contact)
        assert contact.name == f"已匿名化 #{person.contact}" and contact.mobile is None
        customer = s.get(Customer, person.customer)
        assert customer.name == NAME and customer.phone == PHONE  # the customer is untouched
        first, second = (s.get(Activity, pk) for pk in person.activities)
        assert first.subject == "电话回访周敏的装修需求"  # not the contact's
        assert second.subject == "内容已删除（个人信息已匿名化）" and second.kind == "visit"
        mine, theirs = (s.get(Consent, pk) for pk in person.consents)
        assert mine.source == SOURCE and theirs.source is None
    audit = _audit_text(app)
    for value in ("周敏助理李雪", MOBILE, WECHAT, "确认安装时间", "微信小程序授权页"):
        assert value not in audit, value
    assert PHONE in audit  # the customer's own history stays
    [entry] = _entries(app, "erase")
    assert (entry.model, entry.record_id, entry.channel, entry.user_id) == (
        "contact",
        person.contact,
        "cli",
        None,
    )
    again = _crm(app, "privacy", "erase", "--contact", str(person.contact), "--yes")
    assert again.exit_code != 0 and "已经删除过" in again.output


@pytest.mark.crm_audit_unchecked
def test_admin_erases_a_contact_of_a_company_from_the_360_page(app, admin_client):
    company = add_customer(app, name="上海闵行新锐机械有限公司", code="SH-XR-01")
    with app.app_context():
        contact = Contact(customer_id=company, name="陈静", mobile="13611112222", email="cj@xr.cn")
        session().add(contact)
        session().commit()
        pk = contact.id
    page = admin_client.get(f"/customer/{company}").get_data(as_text=True)
    assert f"/privacy/contact/{pk}/erase" in page
    confirm = admin_client.post(f"/privacy/contact/{pk}/erase").get_data(as_text=True)
    assert "陈静" in confirm and "无法撤销" in confirm
    done = admin_client.post(
        f"/privacy/contact/{pk}/erase", data={"confirm": "yes"}, follow_redirects=True
    ).get_data(as_text=True)
    assert f"联系人 #{pk} 的个人信息已删除" in done
    assert "陈静" not in done and f"已匿名化 #{pk}" in done
    contacts = done.split('id="crm-contacts"')[1].split("</table>")[0]
    assert "已匿名化</span>" in contacts and f"/privacy/contact/{pk}/erase" not in contacts
    with app.app_context():
        assert session().get(Customer, company).name == "上海闵行新锐机械有限公司"
    assert "13611112222" not in _audit_text(app) and "陈静" not in _audit_text(app)


def test_export_and_erase_answer_404_for_unknown_records(app, admin_client):
    for path in (
        "/privacy/customer/987654/export",
        "/privacy/contact/987654/export",
        "/privacy/customer/987654/erase",
        "/privacy/contact/987654/erase",
    ):
        assert admin_client.post(path).status_code == 404, path
    missing = _crm(app, "privacy", "export", "--customer", "987654")
    assert missing.exit_code != 0
    assert re.search(r"987654", missing.output)


def test_marketing_reads_consents_but_does_not_record_them(app):
    from crm_core.testing.plugin import login_client

    marketing = login_client(app, "Marketing")
    assert marketing.get("/api/v1/consent/").status_code == 200
    refused = marketing.post(
        "/api/v1/consent/",
        json={"customer_id": 1, "purpose": "marketing", "channel": "web"},
    )
    assert refused.status_code == 403


@pytest.mark.crm_audit_unchecked  # the erasure redacts the history on purpose
def test_erasure_clears_personal_custom_fields_and_their_history(app, admin_client):
    from helpers import define_field

    from crm_core.privacy.erase import erase_customer

    define_field(admin_client, name="id_number", kind="text", label_zh="身份证号", sensitive="y")
    define_field(
        admin_client, name="grade", kind="choice", label_zh="客户等级", choices="A|A 级\nB|B 级"
    )
    made = admin_client.post(
        "/api/v1/customer/",
        json={
            "name": "周杰",
            "kind": "person",
            "custom": {"id_number": "320102198001011234", "grade": "A"},
        },
    )
    pk = made.get_json()["id"]
    changed = admin_client.put(
        f"/api/v1/customer/{pk}", json={"custom": {"id_number": "320102198001015678"}}
    )
    assert changed.status_code == 200
    with app.app_context():
        erase_customer(session().get(Customer, pk))
        session().commit()
        assert session().get(Customer, pk).custom == {"grade": "A"}  # the aggregate stays
        entries = (
            session()
            .scalars(
                select(AuditLog.changes).where(
                    AuditLog.model == "customer", AuditLog.record_id == pk
                )
            )
            .all()
        )
        erasing = (
            session()
            .scalars(  # the erasing write's own event
                select(OutboxEvent.payload)
                .where(OutboxEvent.type == "customer.updated")
                .order_by(OutboxEvent.id.desc())
            )
            .first()
        )
    everything = json.dumps([entries, erasing], ensure_ascii=False)
    assert "320102198001011234" not in everything and "320102198001015678" not in everything
    assert '"grade": "A"' in everything  # not personal: kept in the history
