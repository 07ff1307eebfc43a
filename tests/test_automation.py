"""Automation rules: events and field changes run actions on records (assign, tasks, inbox,
e-mail, webhooks, approvals, plugins' actions), once per trigger, logged, retried with
back-off, stopped in loops, dry-run without writing, versioned and moved in bundles."""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import threading
from collections.abc import Iterator
from datetime import timedelta
from email import message_from_bytes, policy
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from flask import Flask, current_app
from flask_babel import force_locale
from helpers import define_field
from plugins_support import install_and_enable
from sqlalchemy import func, select, update

from crm_core.activities.models import Activity
from crm_core.cli.db import upgrade_all
from crm_core.cli.users import ensure_user
from crm_core.customers.models import Contact, Customer
from crm_core.db import session, utcnow
from crm_core.events.dispatch import dispatch_pending
from crm_core.events.models import EventDelivery, OutboxEvent
from crm_core.lowcode import bundle
from crm_core.org.models import Team, UserProfile
from crm_core.plugins import lifecycle
from crm_core.security.audit import AuditLog
from crm_core.settings.store import set_setting
from crm_core.specs import Event
from crm_core.testing.databases import backend_url, drop
from crm_core.testing.plugin import PASSWORD, make_test_app, user_id
from crm_core.workflow.approvals import definitions as approval_definitions
from crm_core.workflow.approvals import engine as approvals
from crm_core.workflow.approvals.models import ApprovalInstance, ApprovalProcess, ApprovalTask
from crm_core.workflow.assignment.models import AssignmentRule, AssignmentTurn
from crm_core.workflow.automation import definitions, engine, rulecache
from crm_core.workflow.automation.builtin import SIGNATURE_HEADER
from crm_core.workflow.automation.dryrun import dry_run
from crm_core.workflow.automation.models import (
    AutomationRule,
    AutomationRuleVersion,
    AutomationRun,
)
from crm_core.workflow.notifications.models import Notification

SHANGHAI_REPS = ("sh_wang", "sh_li", "sh_zhang")
SHANGHAI_NAMES = ("王芳", "李强", "张伟")


# --------------------------------------------------------------------------- fixtures


def _user(username: str, team_id: int | None, first: str) -> int:
    ensure_user(username, None, f"{username}@example.cn", "Sales Rep", first=first)
    uid = int(current_app.appbuilder.sm.find_user(username=username).id)  # type: ignore[attr-defined]
    session().add(UserProfile(user_id=uid, team_id=team_id))
    session().commit()
    return uid


@pytest.fixture
def org(app: Flask) -> dict[str, int]:
    """上海销售部 (王芳, 李强, 张伟) with the round-robin assignment rule 上海轮询."""
    with app.app_context():
        team = Team(name="上海销售部")
        session().add(team)
        session().flush()
        team.path = f"/{team.id}/"
        session().commit()
        ids = {"shanghai": team.id}
        for username, first in zip(SHANGHAI_REPS, SHANGHAI_NAMES, strict=True):
            ids[username] = _user(username, team.id, first)
        session().add(
            AssignmentRule(
                model="Customer", name="上海轮询", team_id=team.id, strategy="round_robin"
            )
        )
        session().commit()
        return ids


class _Receiver(BaseHTTPRequestHandler):
    def do_POST(self) -> None:  # noqa: N802 - http.server's name
        length = int(self.headers.get("Content-Length", 0))
        body = self.rfile.read(length)
        headers = {k.lower(): v for k, v in self.headers.items()}
        self.server.received.append((self.path, headers, body))  # type: ignore[attr-defined]
        self.send_response(self.server.status)  # type: ignore[attr-defined]
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *_args: Any) -> None:
        pass


@pytest.fixture
def receiver() -> Iterator[Any]:
    """A local HTTP server recording each POST (path, headers, raw body); it answers with
    ``receiver.status`` (200 unless a test makes it fail)."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Receiver)
    server.received = []  # type: ignore[attr-defined]
    server.status = 200  # type: ignore[attr-defined]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    server.url = f"http://127.0.0.1:{server.server_address[1]}/hooks/crm"  # type: ignore[attr-defined]
    yield server
    server.shutdown()
    server.server_close()


# --------------------------------------------------------------------------- helpers


def _do(type_: str, **params: str) -> dict[str, Any]:
    return {"type": type_, "params": params}


def _rule(name: str, *actions: dict[str, Any], **settings: Any) -> int:
    """Save a rule as the admin screen would (its definition must pass the screen's checks);
    ``conditions`` are lines. Call inside an app context."""
    data = definitions.normalised(
        {
            "label_zh": settings.pop("label_zh", name),
            "model": "Customer",
            "trigger": "event",
            "event_type": "customer.created",
            "actions": list(actions),
            **settings,
        }
    )
    assert definitions.problems(data) == {}, definitions.problems(data)
    rule = AutomationRule(name=name)
    assert definitions.save(session(), rule, data, "t_admin")
    session().commit()
    return rule.id


def _customer(name: str, **fields: Any) -> int:
    """A customer written by a user (committed), its events then delivered."""
    customer = Customer(name=name, **fields)
    session().add(customer)
    session().commit()
    dispatch_pending()
    return customer.id


def _change(customer_id: int, **fields: Any) -> None:
    customer = session().get(Customer, customer_id)
    for key, value in fields.items():
        setattr(customer, key, value)
    session().commit()
    dispatch_pending()


def _fresh(model: type, pk: int) -> Any:
    session().expire_all()
    return session().get(model, pk)


def _runs(rule_id: int | None = None) -> list[AutomationRun]:
    session().expire_all()
    query = select(AutomationRun).order_by(AutomationRun.id)
    if rule_id is not None:
        query = query.where(AutomationRun.rule_id == rule_id)
    return list(session().scalars(query))


def _tasks(customer_id: int) -> list[Activity]:
    session().expire_all()
    query = select(Activity).where(Activity.customer_id == customer_id).order_by(Activity.id)
    return list(session().scalars(query))


def _count(model: type) -> int:
    return int(session().scalar(select(func.count()).select_from(model)) or 0)


# --------------------------------------------------------------------------- 1. events


def test_new_shanghai_manufacturers_are_assigned_in_turn_with_a_visit_task(app, org):
    with app.app_context():
        rule_id = _rule(
            "上海制造业新客户",
            _do("assign", rule="上海轮询"),
            _do("create_task", subject="首次拜访 {{ record.name }}", due_days="2"),
            conditions=["city eq 上海", "industry eq 制造业"],
        )
        names = ["上海华东精密机械有限公司", "上海浦江模具制造有限公司", "上海临港重工有限公司"]
        before = utcnow().replace(microsecond=0)  # MariaDB keeps whole seconds
        ids = [_customer(n, city="上海", industry="制造业") for n in names]
        after = utcnow() + timedelta(seconds=1)  # or rounds to the next second
        beijing = _customer("北京精工机械有限公司", city="北京", industry="制造业")

        owners = [_fresh(Customer, pk).owner_id for pk in ids]
        assert owners == [org[u] for u in SHANGHAI_REPS]  # round-robin: each rep in turn
        for pk, name, owner in zip(ids, names, owners, strict=True):
            (task,) = _tasks(pk)
            assert task.subject == f"首次拜访 {name}"
            assert task.owner_id == owner  # the owner the assign action gave just before
            assert not task.done and task.kind == "task"
            assert before + timedelta(days=2) <= task.due_at <= after + timedelta(days=2)
        assert _fresh(Customer, beijing).owner_id is None
        assert _tasks(beijing) == []

        runs = _runs(rule_id)
        assert [r.record_id for r in runs] == ids
        for run, who in zip(runs, SHANGHAI_NAMES, strict=True):
            assert run.status == "done" and run.error is None and run.attempts == 1
            assert run.rule_version == 1 and run.model == "Customer"
            assert run.trigger_key == f"event:{run.event_id}"
            assert len(run.results) == 2
            assert who in run.results[0] and "上海轮询" in run.results[0]
            assert "首次拜访" in run.results[1]
            assert run.duration_ms is not None and run.duration_ms >= 0


def test_any_of_the_conditions_and_a_custom_field_condition(app, admin_client):
    define_field(
        admin_client, name="grade", kind="choice", label_zh="客户等级", choices="A|A 级\nB|B 级"
    )
    with app.app_context():
        _rule(
            "重点客户提醒",
            _do("notify", to="t_manager", title="重点客户：{{ record.name }}"),
            join="any",
            conditions=["custom__grade eq A", "industry eq 金融"],
        )
        _customer("苏州工业园区精密制造有限公司", industry="制造业", custom={"grade": "A"})
        _customer("上海浦江银行", industry="金融", custom={"grade": "B"})
        _customer("无锡小五金厂", industry="制造业", custom={"grade": "B"})
        _customer("常州普通客户", industry="制造业")
        titles = session().scalars(
            select(Notification.title)
            .where(Notification.user_id == user_id(app, "t_manager"))
            .order_by(Notification.id)
        )
        assert list(titles) == ["重点客户：苏州工业园区精密制造有限公司", "重点客户：上海浦江银行"]


def test_a_contact_rule_tests_the_customer_it_belongs_to(app):
    with app.app_context():
        rule_id = _rule(
            "认识上海客户的新联系人",
            _do("create_task", subject="认识 {{ record.name }}", owner="t_rep", due_days="1"),
            model="Contact",
            event_type="contact.created",
            conditions=["customer.city eq 上海"],
        )
        shanghai = _customer("上海华东精密机械有限公司", city="上海")
        beijing = _customer("北京中关村软件有限公司", city="北京")
        contacts = []
        for customer_id, name in ((shanghai, "王建国"), (beijing, "刘洋")):
            contact = Contact(customer_id=customer_id, name=name)
            session().add(contact)
            session().commit()
            contacts.append(contact.id)
        dispatch_pending()
        (task,) = _tasks(shanghai)
        assert task.subject == "认识 王建国"
        assert task.owner_id == user_id(app, "Sales Rep")
        assert (task.ref_model, task.ref_id) == ("Contact", contacts[0])
        assert _tasks(beijing) == []
        assert [(r.model, r.record_id) for r in _runs(rule_id)] == [("Contact", contacts[0])]


# --------------------------------------------------------------------------- 2. field changes


def test_a_field_change_rule_fires_when_its_field_changes_or_is_set_on_create(app):
    with app.app_context():
        rule_id = _rule(
            "等级变化跟进",
            _do("create_task", subject="等级变为 {{ record.tier }}", owner="t_rep"),
            trigger="field_change",
            field="tier",
        )
        plain = _customer("杭州西湖茶业有限公司", city="杭州")
        assert _runs(rule_id) == []  # created without a tier
        _change(plain, city="宁波", notes="搬到宁波了")
        assert _runs(rule_id) == []  # another field changed
        _change(plain, tier="A")
        assert [t.subject for t in _tasks(plain)] == ["等级变为 A"]
        _change(plain, tier="VIP")
        assert [t.subject for t in _tasks(plain)] == ["等级变为 A", "等级变为 VIP"]
        vip = _customer("深圳市前海云图科技有限公司", tier="VIP")
        assert [t.subject for t in _tasks(vip)] == ["等级变为 VIP"]
        assert [r.status for r in _runs(rule_id)] == ["done"] * 3


# --------------------------------------------------------------------------- 3. once only


def test_an_event_delivered_twice_runs_the_rule_once(app):
    with app.app_context():
        rule_id = _rule("新客户回访", _do("create_task", subject="回访", owner="t_rep"))
        pk = _customer("成都天府软件园有限公司")
        row = session().scalar(select(OutboxEvent).where(OutboxEvent.type == "customer.created"))
        event = Event(
            id=row.id, type=row.type, payload=dict(row.payload), occurred_at=row.occurred_at
        )
        # The dispatcher forgets it delivered the event (a crash before it noted so) ...
        session().execute(EventDelivery.__table__.delete())
        session().execute(
            update(OutboxEvent).where(OutboxEvent.id == row.id).values(dispatched_at=None)
        )
        session().commit()
        dispatch_pending()
        # ... and another process hands the same event to the engine once more.
        engine.on_event(event)
        assert len(_runs(rule_id)) == 1
        assert len(_tasks(pk)) == 1


# --------------------------------------------------------------------------- 4. actions


def test_set_field_writes_a_column_a_picklist_value_and_a_custom_field(app, admin_client):
    define_field(
        admin_client, name="grade", kind="choice", label_zh="客户等级", choices="A|A 级\nB|B 级"
    )
    with app.app_context():
        rule_id = _rule(
            "新客户默认值",
            _do("set_field", field="notes", value="{{ record.city }}的新客户"),
            _do("set_field", field="tier", value="B"),
            _do("set_field", field="custom__grade", value="A"),
            _do("set_field", field="credit_limit", value="50000"),
        )
        pk = _customer("南京玄武电子有限公司", city="南京")
        customer = _fresh(Customer, pk)
        assert customer.notes == "南京的新客户"
        assert customer.tier == "B"
        assert customer.custom == {"grade": "A"}
        assert customer.credit_limit == 50000
        (run,) = _runs(rule_id)
        assert run.status == "done"
        assert "tier" in run.results[1] and "B" in run.results[1]
        # The writes are the rule's: audited as coming from automation, the create the user's.
        created, *by_rule = session().scalars(
            select(AuditLog)
            .where(AuditLog.model == "customer", AuditLog.record_id == pk)
            .order_by(AuditLog.id)
        )
        assert (created.operation, created.channel) == ("create", "system")
        assert {(e.operation, e.channel) for e in by_rule} == {("update", "automation")}
        changed = {k: v for e in by_rule for k, v in e.changes.items()}
        assert changed["tier"] == [None, "B"]
        assert changed["notes"] == [None, "南京的新客户"]
        assert changed["custom"] == [None, {"grade": "A"}]


def test_a_value_the_field_refuses_fails_the_run_at_once_and_keeps_nothing(app):
    with app.app_context():
        rule_id = _rule(
            "钻石客户",
            _do("set_field", field="notes", value="升级为钻石"),
            _do("create_task", subject="钻石客户回访", owner="t_rep"),
            _do("set_field", field="tier", value="钻石"),
        )
        pk = _customer("广州天河商贸有限公司")
        (run,) = _runs(rule_id)
        assert run.status == "failed" and run.attempts == 1
        assert run.next_attempt_at is None
        assert run.error.startswith("tier:") and "钻石" in run.error
        customer = _fresh(Customer, pk)
        assert (customer.notes, customer.tier) == (None, None)
        assert _tasks(pk) == []
        assert engine.retry_due(now=utcnow() + timedelta(days=1)) == {"retried": 0, "done": 0}


def test_notify_puts_the_rendered_title_in_the_owners_inbox(app):
    with app.app_context():
        rep = user_id(app, "Sales Rep")
        _rule(
            "新客户通知",
            _do("notify", title="新客户：{{ record.name }}（{{ record.city }}）", body="请跟进"),
        )
        pk = _customer("厦门鼓浪屿文旅有限公司", city="厦门", owner_id=rep)
        (note,) = session().scalars(select(Notification))
        assert note.user_id == rep
        assert note.title == "新客户：厦门鼓浪屿文旅有限公司（厦门）"
        assert note.body == "请跟进"
        assert note.read_at is None
        assert (note.record_model, note.record_id) == ("Customer", pk)
        assert note.url.endswith(f"/show/{pk}")


def test_an_email_in_chinese_reaches_the_smtp_server(app, smtp):
    mailbox, port = smtp
    with app.app_context():
        set_setting("notifications.smtp_host", "127.0.0.1")
        set_setting("notifications.smtp_port", port)
        set_setting("notifications.smtp_sender", "crm@example.cn")
        session().commit()
        _rule(
            "欢迎邮件",
            _do(
                "email",
                subject="欢迎 {{ record.name }} 成为我们的客户",
                body="尊敬的{{ record.name }}：\n您在{{ record.city }}的专属顾问会尽快联系您。",
            ),
        )
        _customer("青岛崂山海润食品有限公司", city="青岛", email="caigou@hairun.cn")
    (envelope,) = mailbox.messages
    assert envelope.rcpt_tos == ["caigou@hairun.cn"]
    mail = message_from_bytes(envelope.content, policy=policy.default)
    assert mail["Subject"] == "欢迎 青岛崂山海润食品有限公司 成为我们的客户"
    assert mail["From"] == "crm@example.cn"
    text = mail.get_content()
    assert "尊敬的青岛崂山海润食品有限公司：" in text
    assert "您在青岛的专属顾问会尽快联系您。" in text


def test_a_webhook_posts_the_record_signed_with_the_secret(app, receiver):
    secret = "s3cr3t-签名密钥"
    with app.app_context():
        rule_id = _rule(
            "通知 ERP",
            _do("webhook", url=receiver.url, secret=secret),
            conditions=["city eq 上海"],
        )
        pk = _customer("上海华东精密机械有限公司", city="上海", industry="制造业")
        _customer("北京精工机械有限公司", city="北京")
        (run,) = _runs(rule_id)
        assert run.status == "done" and "200" in run.results[0]
    ((path, headers, body),) = receiver.received  # the 北京 customer was not sent
    assert path == "/hooks/crm"
    assert headers["content-type"].startswith("application/json")
    data = json.loads(body.decode("utf-8"))
    assert data["rule"] == "通知 ERP" and data["model"] == "Customer"
    assert data["record"]["id"] == pk
    assert data["record"]["name"] == "上海华东精密机械有限公司"
    assert data["record"]["industry"] == "制造业"
    assert data["event"]["type"] == "customer.created"
    expected = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    assert headers[SIGNATURE_HEADER.lower()] == f"sha256={expected}"


def test_start_approval_locks_the_record_until_it_is_decided(app, rep_client):
    with app.app_context():
        process = ApprovalProcess(
            name="credit", model="Customer", label_zh="信用额度审批", active=True
        )
        approval_definitions.save(
            session(),
            process,
            [
                {
                    "kind": "user",
                    "targets": ["t_manager"],
                    "timeout_hours": None,
                    "escalate_to": None,
                }
            ],
        )
        session().commit()
        rule_id = _rule(
            "大额信用审批",
            _do("start_approval", process="credit"),
            conditions=["credit_limit gt 100000"],
        )
        rep = user_id(app, "Sales Rep")
        big = _customer("上海华东精密机械有限公司", owner_id=rep, credit_limit=800000)
        small = _customer("宁波小五金", owner_id=rep, credit_limit=50000)
        (run,) = _runs(rule_id)
        assert run.status == "done" and run.record_id == big
        instance = session().scalar(select(ApprovalInstance))
        assert (instance.record_id, instance.status, instance.submitter_id) == (
            big,
            "pending",
            rep,
        )
        (task,) = session().scalars(select(ApprovalTask))
        assert task.user_id == user_id(app, "t_manager") and task.status == "pending"
        assert approvals.is_locked(_fresh(Customer, big))
        assert not approvals.is_locked(_fresh(Customer, small))
    refused = rep_client.put(f"/api/v1/customer/{big}", json={"city": "无锡"})
    assert refused.status_code == 422 and "信用额度审批" in str(refused.get_json()["message"])
    assert rep_client.put(f"/api/v1/customer/{small}", json={"city": "无锡"}).status_code == 200


def test_a_plugins_action_runs_while_the_plugin_is_enabled(plugin_site):
    from crm_testplugin import GADGET_ACTION
    from crm_testplugin.models import Gadget

    site = plugin_site("testplugin")
    app = site.start()
    install_and_enable(app, "testplugin")
    with app.app_context():
        rule_id = _rule("送样品", _do(GADGET_ACTION, name="{{ record.name }}的样品"))
        first = _customer("温州瓯海眼镜有限公司")
        (gadget,) = session().scalars(select(Gadget))
        assert (gadget.name, gadget.customer_id) == ("温州瓯海眼镜有限公司的样品", first)
        (run,) = _runs(rule_id)
        assert run.status == "done" and "温州瓯海眼镜有限公司的样品" in run.results[0]

        lifecycle.disable("testplugin")
        with force_locale("en"):
            second = _customer("台州黄岩模具有限公司")
            data = definitions.normalised(
                definitions.definition_of(session().get(AutomationRule, rule_id))
            )
            refused = definitions.problems(data)
        assert refused == {"actions": [f"Action 1: there is no action {GADGET_ACTION}."]}
        assert _count(Gadget) == 1
        (_done, waiting) = _runs(rule_id)
        assert waiting.record_id == second and waiting.status == "retry"
        assert GADGET_ACTION in waiting.error

        lifecycle.enable("testplugin")
        assert engine.retry_due(now=utcnow() + timedelta(minutes=5)) == {"retried": 1, "done": 1}
        assert _fresh(AutomationRun, waiting.id).status == "done"
        names = sorted(session().scalars(select(Gadget.name)))
        assert names == ["台州黄岩模具有限公司的样品", "温州瓯海眼镜有限公司的样品"]


# --------------------------------------------------------------------------- 5. failures


def test_a_failing_webhook_is_retried_with_back_off_then_given_up(app, receiver):
    receiver.status = 500
    with app.app_context():
        hook = _rule("通知 ERP", _do("webhook", url=receiver.url), position=10)
        task = _rule("新客户回访", _do("create_task", subject="回访", owner="t_rep"), position=20)
        pk = _customer("武汉光谷生物科技有限公司")
        (failed,) = _runs(hook)
        assert failed.status == "retry" and failed.attempts == 1
        assert "500" in failed.error
        assert failed.next_attempt_at > utcnow()
        assert failed.results is None
        for leak in ("Traceback", 'File "', "SELECT", "INSERT", "UPDATE "):
            assert leak not in failed.error
        (done,) = _runs(task)
        assert done.status == "done"  # the other rule on the same event is not held up
        assert len(_tasks(pk)) == 1

        assert engine.retry_due() == {"retried": 0, "done": 0}  # not due yet
        receiver.status = 200
        later = utcnow() + timedelta(minutes=2)
        assert engine.retry_due(now=later) == {"retried": 1, "done": 1}
        again = _fresh(AutomationRun, failed.id)
        assert (again.status, again.attempts, again.error) == ("done", 2, None)
        assert again.next_attempt_at is None
        assert len(receiver.received) == 2  # the failed call and the good one
        assert len(_tasks(pk)) == 1  # the other rule did not run again

        receiver.status = 500
        second = _customer("长沙岳麓智能装备有限公司")
        (run,) = [r for r in _runs(hook) if r.record_id == second]
        waits = []
        for _ in range(engine.MAX_ATTEMPTS - 1):
            run = _fresh(AutomationRun, run.id)
            assert run.status == "retry"
            waits.append(run.next_attempt_at)
            engine.retry_due(now=utcnow() + timedelta(days=1))
        # Each failure waits longer: 1, 2, 4, 8, 16 minutes.
        assert waits == sorted(waits) and waits[-1] - waits[0] >= timedelta(minutes=14)
        run = _fresh(AutomationRun, run.id)
        assert (run.status, run.attempts) == ("failed", engine.MAX_ATTEMPTS)
        assert run.next_attempt_at is None and "500" in run.error
        assert engine.retry_due(now=utcnow() + timedelta(days=30)) == {"retried": 0, "done": 0}
        assert len(receiver.received) == 2 + engine.MAX_ATTEMPTS


# --------------------------------------------------------------------------- 6. loops


def test_a_rule_that_changes_its_own_record_stops_as_a_loop(app):
    with app.app_context():
        rule_id = _rule(
            "更新后加备注",
            _do("set_field", field="notes", value="{{ record.notes }}+"),
            event_type="customer.updated",
        )
        pk = _customer("天津滨海新区港务有限公司", notes="备注")
        with force_locale("en"):
            _change(pk, city="天津")
        assert _fresh(Customer, pk).notes == "备注+"  # one round, not forever
        done, loop = _runs(rule_id)
        assert done.status == "done"
        assert loop.status == "loop" and loop.cause == [rule_id]
        assert loop.error == f"Stopped: this run would repeat a chain of rules ({rule_id})."
        assert loop.event_id != done.event_id
        assert len(_runs()) == 2


def test_two_rules_triggering_each_other_stop_within_the_depth_limit(app):
    with app.app_context():
        first = _rule(
            "备注变了改地址",
            _do("set_field", field="address", value="{{ record.notes }}路"),
            trigger="field_change",
            field="notes",
        )
        second = _rule(
            "地址变了改备注",
            _do("set_field", field="notes", value="{{ record.address }}号"),
            trigger="field_change",
            field="address",
        )
        pk = _customer("重庆渝中商贸有限公司")
        _change(pk, notes="解放碑")
        customer = _fresh(Customer, pk)
        assert (customer.address, customer.notes) == ("解放碑路", "解放碑路号")
        runs = _runs()
        assert [(r.rule_id, r.status) for r in runs] == [
            (first, "done"),
            (second, "done"),
            (first, "loop"),
        ]
        assert runs[-1].cause == [first, second]
        assert len(runs) <= engine.MAX_DEPTH


def test_a_longer_chain_of_different_rules_stops_at_the_depth_limit(app):
    fields = ["notes", "address", "district", "province", "website", "city", "phone"]
    values = ["", "", "", "", "", "", "+8613800000000"]
    with app.app_context():
        ids = []
        for n, (field, target) in enumerate(zip(fields, fields[1:], strict=False)):
            value = values[n + 1] or f"第{n + 1}步"
            ids.append(
                _rule(
                    f"链{n + 1}",
                    _do("set_field", field=target, value=value),
                    trigger="field_change",
                    field=field,
                )
            )
        pk = _customer("西安高新区软件有限公司")
        _change(pk, notes="开始")
        runs = _runs()
        assert [r.status for r in runs] == ["done"] * engine.MAX_DEPTH + ["loop"]
        assert [r.rule_id for r in runs] == ids[: engine.MAX_DEPTH + 1]
        assert runs[-1].cause == ids[: engine.MAX_DEPTH]
        customer = _fresh(Customer, pk)
        last, past = fields[engine.MAX_DEPTH], fields[engine.MAX_DEPTH + 1]
        assert getattr(customer, last) == f"第{engine.MAX_DEPTH}步"
        assert getattr(customer, past) is None  # the rule past the limit did not run


# --------------------------------------------------------------------------- 7. lifecycle


def test_a_switched_off_rule_does_not_run_and_edits_are_versions(app):
    with app.app_context():
        rule_id = _rule("新客户回访", _do("create_task", subject="回访", owner="t_rep"))
        rule = session().get(AutomationRule, rule_id)
        edited = definitions.normalised(
            {
                **definitions.definition_of(rule),
                "actions": [_do("create_task", subject="电话回访", owner="t_rep")],
            }
        )
        assert definitions.problems(edited) == {}
        assert definitions.save(session(), rule, edited, "t_manager")
        session().commit()
        assert not definitions.save(session(), rule, edited, "t_manager")  # nothing changed
        history = definitions.versions(session(), rule)
        assert [(v.number, v.saved_by) for v in history] == [(2, "t_manager"), (1, "t_admin")]
        assert history[1].definition["actions"][0]["params"]["subject"] == "回访"
        assert history[0].definition["actions"][0]["params"]["subject"] == "电话回访"
        assert history[0].definition == definitions.definition_of(rule)

        pk = _customer("合肥科大讯联有限公司")
        (run,) = _runs(rule_id)
        assert run.rule_version == 2
        assert [t.subject for t in _tasks(pk)] == ["电话回访"]

        rule.active = False
        session().commit()
        off = _customer("合肥滨湖新区贸易有限公司")
        assert _tasks(off) == [] and len(_runs(rule_id)) == 1
        assert _count(AutomationRuleVersion) == 2  # switching off is not a new definition


# --------------------------------------------------------------------------- 8. dry run


def test_the_dry_run_predicts_the_next_run_and_writes_nothing(app, org):
    with app.app_context():
        waiting = _customer("上海闵行精密铸造有限公司", city="上海", industry="制造业")
        elsewhere = _customer("北京精工机械有限公司", city="北京", industry="制造业")
        rule_id = _rule(
            "上海制造业新客户",
            _do("assign", rule="上海轮询"),
            _do("create_task", subject="首次拜访 {{ record.name }}", due_days="2"),
            conditions=["city eq 上海", "industry eq 制造业"],
        )
        events_before = _count(OutboxEvent)
        before = utcnow()
        rule = rulecache.RuleDef.of(session().get(AutomationRule, rule_id))
        records = [session().get(Customer, waiting), session().get(Customer, elsewhere)]
        meets, outside = dry_run(rule, records)
        after = utcnow()
        assert outside.matches is False and outside.actions == ()
        assert meets.matches is True and len(meets.actions) == 2
        assert "王芳" in meets.actions[0] and "上海轮询" in meets.actions[0]
        due = {(t + timedelta(days=2)).strftime("%Y-%m-%d") for t in (before, after)}
        assert any(day in meets.actions[1] for day in due)
        assert "首次拜访 上海闵行精密铸造有限公司" in meets.actions[1]
        assert "王芳" in meets.actions[1] or "sh_wang" in meets.actions[1]  # the task's owner
        # Nothing was written: no run, the turn did not move, no task, no owner, no event.
        assert _runs() == []
        assert session().scalar(select(AssignmentTurn)) is None
        assert _count(Activity) == 0
        assert _fresh(Customer, waiting).owner_id is None
        assert _count(OutboxEvent) == events_before

        again = dry_run(rule, [session().get(Customer, waiting)])[0]
        assert again.actions == meets.actions
        real = _customer("上海松江电子有限公司", city="上海", industry="制造业")
        assert _fresh(Customer, real).owner_id == org["sh_wang"]  # as predicted


# --------------------------------------------------------------------------- 9. bundles


@pytest.fixture
def copy_app(crm_backend: str, tmp_path: Any) -> Iterator[Flask]:
    """A second, empty CRM on the same backend (another instance to import into)."""
    url = backend_url(crm_backend, f"crm_auto_copy_{os.getpid()}", tmp_path)
    other = make_test_app(url, CRM_PLUGINS="")
    with other.app_context():
        upgrade_all()
        ensure_user("t_rep", PASSWORD, "t_rep@example.cn", "Sales Rep", first="t_rep")
    yield other
    with other.app_context():
        other.extensions["crm_db"].session.remove()
        other.extensions["crm_db"].engine.dispose()
    drop(url)
    rulecache.forget()


def test_rules_travel_in_a_bundle_to_another_instance(app, copy_app):
    with app.app_context():
        _rule(
            "上海新客户回访",
            _do("create_task", subject="回访 {{ record.name }}", owner="t_rep", due_days="3"),
            _do("notify", to="owner", title="新客户：{{ record.name }}"),
            label_en="Call back new Shanghai customers",
            conditions=["city eq 上海", "industry eq 制造业"],
            join="any",
            position=5,
        )
        _rule(
            "等级变化",
            _do("set_field", field="notes", value="等级：{{ record.tier }}"),
            trigger="field_change",
            field="tier",
            active=False,
        )
        text = bundle.dump(bundle.export(session()))
        section = bundle.export(session())["automation_rules"]
    assert set(section) == {"上海新客户回访", "等级变化"}

    with copy_app.app_context():
        changes = bundle.apply(session(), bundle.load(text))
        assert "automation_rules.上海新客户回访: added" in changes
        assert "automation_rules.等级变化: added" in changes
        assert bundle.export(session())["automation_rules"] == section
        assert bundle.apply(session(), bundle.load(text)) == []  # nothing left to change
        saved = session().scalar(
            select(AutomationRule).where(AutomationRule.name == "上海新客户回访")
        )
        (version,) = definitions.versions(session(), saved)
        assert version.saved_by == "config import"
        # The copy behaves as the original: a 上海 customer gets its call-back task.
        pk = _customer("上海外高桥物流有限公司", city="上海")
        (task,) = _tasks(pk)
        assert task.subject == "回访 上海外高桥物流有限公司"
        rep = copy_app.appbuilder.sm.find_user(username="t_rep")  # type: ignore[attr-defined]
        assert task.owner_id == rep.id
        assert _tasks(_customer("杭州客户", city="杭州", tier="A")) == []  # 等级变化 is off

        broken = bundle.load(text)
        broken["automation_rules"]["上海新客户回访"]["event_type"] = "customer.exploded"
        broken["automation_rules"]["等级变化"]["actions"][0]["params"]["field"] = "grade"
        with force_locale("en"), pytest.raises(bundle.BundleError) as refused:
            bundle.apply(session(), broken)
        problems = refused.value.problems
        assert (
            "automation_rules.上海新客户回访.event_type: There is no event customer.exploded."
            in problems
        )
        assert "automation_rules.等级变化.actions: Action 1: There is no field grade." in problems
        assert bundle.export(session())["automation_rules"] == section  # nothing was applied


def test_a_rule_on_a_custom_field_imports_with_its_field(app, admin_client, copy_app):
    define_field(
        admin_client, name="grade", kind="choice", label_zh="客户等级", choices="A|A 级\nB|B 级"
    )
    with app.app_context():
        _rule(
            "A 级客户回访",
            _do("create_task", subject="回访", owner="t_rep"),
            conditions=["custom__grade eq A"],
        )
        text = bundle.dump(bundle.export(session()))
    with copy_app.app_context():
        changes = bundle.apply(session(), bundle.load(text))
        assert "automation_rules.A 级客户回访: added" in changes


# --------------------------------------------------------------------------- 10. audit


def test_every_write_of_a_run_is_audited_as_automation(app, org):
    with app.app_context():
        _rule(
            "上海制造业新客户",
            _do("assign", rule="上海轮询"),
            _do("create_task", subject="首次拜访", due_days="2"),
            conditions=["city eq 上海"],
        )
        pk = _customer("上海华东精密机械有限公司", city="上海")
        (task,) = _tasks(pk)
        entries = list(
            session().scalars(
                select(AuditLog)
                .where(AuditLog.model.in_(("customer", "activity")))
                .order_by(AuditLog.id)
            )
        )
        seen = [(e.model, e.record_id, e.operation, e.channel) for e in entries]
        assert seen[0] == ("customer", pk, "create", "system")
        # the run's writes flush together: one entry per record it changed, in either order
        assert sorted(seen[1:]) == [
            ("activity", task.id, "create", "automation"),
            ("customer", pk, "update", "automation"),
        ]
        update = next(e for e in entries[1:] if e.model == "customer")
        assert update.changes["owner_id"] == [None, org["sh_wang"]]
        assert update.changes["team_id"] == [None, org["shanghai"]]
