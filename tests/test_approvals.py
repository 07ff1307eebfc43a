"""Approval processes: versioned steps, approvers' decisions, the record lock, reminders and
escalation, the history on the 360° page, and processes in configuration bundles."""

from __future__ import annotations

from copy import deepcopy
from datetime import timedelta
from typing import Any

import pytest
from helpers import add_customer
from sqlalchemy import select

from crm_core.cli.users import ensure_user
from crm_core.customers.models import Customer
from crm_core.db import session, utcnow
from crm_core.errors import FieldError, PermissionDenied
from crm_core.events.models import OutboxEvent
from crm_core.jobs.runner import run_job
from crm_core.lowcode import bundle
from crm_core.org.models import Team, UserProfile
from crm_core.testing.plugin import PASSWORD, login_client, user_id
from crm_core.workflow.approvals import engine
from crm_core.workflow.approvals.models import (
    ApprovalInstance,
    ApprovalProcess,
    ApprovalProcessVersion,
    ApprovalTask,
)
from crm_core.workflow.approvals.reminders import JOB_ID
from crm_core.workflow.notifications.models import Notification

CUSTOMERS = "/api/v1/customer/"
MANAGER, FINANCE, BOSS = "mgr_wang", "fin_li", "boss_zhao"


def _staff(app: Any) -> None:
    """A sales department managed by 王经理 with t_rep in it, 李会计 in the Finance role and
    赵总 as a named approver."""
    with app.app_context():
        sm = app.appbuilder.sm
        finance = sm.add_role("Finance")
        ensure_user(MANAGER, PASSWORD, f"{MANAGER}@example.cn", "Sales Manager", "经理", "王")
        ensure_user(FINANCE, PASSWORD, f"{FINANCE}@example.cn", "Sales Rep", "会计", "李")
        ensure_user(BOSS, PASSWORD, f"{BOSS}@example.cn", "Sales Manager", "总", "赵")
        accountant = sm.find_user(username=FINANCE)
        accountant.roles.append(finance)
        team = Team(name="华东销售部", manager_id=sm.find_user(username=MANAGER).id)
        session().add(team)
        session().flush()
        team.path = f"/{team.id}/"
        session().add(UserProfile(user_id=user_id(app, "Sales Rep"), team_id=team.id))
        session().commit()


def _process(admin_client: Any, name: str, steps: list[tuple[str, str, str, str]], **form: str):  # type: ignore[no-untyped-def]
    """Define (or, with ``pk``, change) a Customer process on the admin screen; ``steps`` are
    rows of (kind, names, timeout hours, escalate to)."""
    pk = form.pop("pk", None)
    data: dict[str, Any] = {
        "name": name,
        "model": "Customer",
        "label_zh": form.pop("label_zh", "信用额度审批"),
        "label_en": "Credit limit approval",
        "active": "y",
        "join": "all",
        "conditions": form.pop("conditions", ""),
        "step_name": [""] * (len(steps) + 1),
        "step_kind": [s[0] for s in steps] + [""],
        "step_targets": [s[1] for s in steps] + [""],
        "step_timeout_hours": [s[2] for s in steps] + [""],
        "step_escalate_to": [s[3] for s in steps] + [""],
    }
    url = f"/approvalprocesses/{pk}/edit" if pk else "/approvalprocesses/add"
    return admin_client.post(url, data=data, follow_redirects=True)


def _instance(app: Any, pk: int) -> ApprovalInstance:
    with app.app_context():
        instance = session().get(ApprovalInstance, pk)
        assert instance is not None
        session().expunge(instance)
        return instance


def _pending_id(app: Any, customer: int) -> int:
    with app.app_context():
        found = session().scalar(
            select(ApprovalInstance.id).where(
                ApprovalInstance.record_id == customer, ApprovalInstance.status == "pending"
            )
        )
        assert found is not None
        return int(found)


def _submit(client: Any, customer: int, process: str = "credit", comment: str = "请审批"):  # type: ignore[no-untyped-def]
    return client.post(
        "/approvals/submit",
        data={"process": process, "record_id": str(customer), "comment": comment},
        follow_redirects=True,
    )


def _decide(client: Any, pk: int, action: str = "approve", comment: str = ""):  # type: ignore[no-untyped-def]
    return client.post(
        f"/approvals/{pk}/decide",
        data={"action": action, "comment": comment},
        follow_redirects=True,
    )


def _events(app: Any, kind: str) -> list[dict[str, Any]]:
    with app.app_context():
        return [
            e.payload
            for e in session().scalars(select(OutboxEvent).where(OutboxEvent.type == kind))
        ]


def test_a_pending_approval_finishes_under_the_steps_it_started_with(app, admin_client):
    _staff(app)
    page = _process(
        admin_client,
        "credit",
        [("manager", "", "", ""), ("role", "Finance", "", "")],
        conditions="credit_limit gt 100000",
    )
    assert page.status_code == 200 and "credit" in page.get_data(as_text=True)
    rep = login_client(app, "Sales Rep")
    rep_id = user_id(app, "Sales Rep")
    small = add_customer(app, name="宁波小五金", owner_id=rep_id, credit_limit=50000)
    big = add_customer(app, name="上海华东精密机械有限公司", owner_id=rep_id, credit_limit=800000)
    # The button is offered only where the entry conditions hold.
    assert "crm-approval-submit" not in rep.get(f"/customer/{small}").get_data(as_text=True)
    assert "crm-approval-submit" in rep.get(f"/customer/{big}").get_data(as_text=True)
    refused = _submit(rep, small)
    assert "信用额度审批" in refused.get_data(as_text=True)
    _submit(rep, big)
    first = _pending_id(app, big)

    # The admin adds a third step while the first approval is pending.
    with app.app_context():
        process_id = session().scalar(select(ApprovalProcess.id))
    page = _process(
        admin_client,
        "credit",
        [("manager", "", "", ""), ("role", "Finance", "", ""), ("user", BOSS, "", "")],
        conditions="credit_limit gt 100000",
        pk=str(process_id),
    )
    assert "crm-approval-versions" not in page.get_data(as_text=True)  # back on the list
    with app.app_context():
        numbers = session().scalars(select(ApprovalProcessVersion.number)).all()
        assert sorted(numbers) == [1, 2]

    manager, finance, boss = (login_client(app, u) for u in (MANAGER, FINANCE, BOSS))
    waiting = manager.get(f"/approvals/{first}").get_data(as_text=True)
    assert "crm-approval-decide" in waiting  # the manager's turn
    assert "crm-approval-decide" not in finance.get(f"/approvals/{first}").get_data(as_text=True)
    versions = admin_client.get(f"/approvalprocesses/{process_id}/edit").get_data(as_text=True)
    assert versions.count("crm-approval-step-row") == 3 + 3  # three steps, three blank rows
    assert "上海华东精密机械有限公司" in manager.get("/approvals/").get_data(as_text=True)
    assert "上海华东精密机械有限公司" not in finance.get("/approvals/").get_data(as_text=True)
    _decide(manager, first, comment="同意")
    assert _instance(app, first).step_index == 1
    _decide(finance, first)
    assert _instance(app, first).status == "approved"  # two steps, as when it started
    assert [e["id"] for e in _events(app, "approval.approved")] == [first]

    with app.app_context():
        session().get(Customer, big).credit_limit = 900000
        session().commit()
    _submit(rep, big)
    second = _pending_id(app, big)
    _decide(manager, second)
    _decide(finance, second)
    assert _instance(app, second).status == "pending"  # the new one needs the third step
    assert _instance(app, second).step_index == 2
    _decide(boss, second)
    assert _instance(app, second).status == "approved"


def test_any_of_and_all_of_several_users(app, admin_client):
    _staff(app)
    _process(admin_client, "any", [("any_of", f"{MANAGER}, {BOSS}", "", "")])
    _process(admin_client, "all", [("all_of", f"{MANAGER}, {BOSS}", "", "")])
    rep = login_client(app, "Sales Rep")
    one = add_customer(app, name="深圳市前海云图科技有限公司", owner_id=user_id(app, "Sales Rep"))
    two = add_customer(app, name="北京中关村软件有限公司", owner_id=user_id(app, "Sales Rep"))
    _submit(rep, one, "any")
    _submit(rep, two, "all")
    manager, boss = login_client(app, MANAGER), login_client(app, BOSS)
    any_id, all_id = _pending_id(app, one), _pending_id(app, two)

    _decide(manager, any_id)
    assert _instance(app, any_id).status == "approved"  # one of them is enough
    assert "深圳市前海云图科技有限公司" not in boss.get("/approvals/").get_data(as_text=True)

    _decide(manager, all_id)
    assert _instance(app, all_id).status == "pending"  # every one of them must approve
    _decide(boss, all_id)
    assert _instance(app, all_id).status == "approved"


def test_the_owners_manager_is_the_manager_above_a_manager(app, admin_client):
    _staff(app)
    with app.app_context():
        sm = app.appbuilder.sm
        team = session().scalar(select(Team))
        head = Team(name="销售中心", manager_id=sm.find_user(username=BOSS).id)
        session().add(head)
        session().flush()
        team.parent_id = head.id
        session().add(UserProfile(user_id=sm.find_user(username=MANAGER).id, team_id=team.id))
        session().commit()
    _process(admin_client, "credit", [("manager", "", "", "")])
    manager = login_client(app, MANAGER)
    own = add_customer(app, name="王经理的客户", owner_id=user_id(app, MANAGER))
    _submit(manager, own)
    pk = _pending_id(app, own)
    with app.app_context():
        asked = session().scalars(
            select(ApprovalTask.user_id).where(ApprovalTask.instance_id == pk)
        )
        assert list(asked) == [user_id(app, BOSS)]


def test_a_pending_approval_locks_the_record(app, admin_client):
    _staff(app)
    _process(admin_client, "credit", [("manager", "", "", "")])
    rep = login_client(app, "Sales Rep")
    pk = add_customer(app, name="苏州精工", owner_id=user_id(app, "Sales Rep"), city="苏州市")
    _submit(rep, pk)
    refused = rep.put(f"{CUSTOMERS}{pk}", json={"city": "无锡市"})
    assert refused.status_code == 422
    assert "信用额度审批" in str(refused.get_json()["message"])
    form = rep.post(
        f"/customers/edit/{pk}", data={"name": "苏州精工", "kind": "company", "city": "常州市"}
    )
    assert "信用额度审批" in form.get_data(as_text=True)
    page = rep.get(f"/customer/{pk}").get_data(as_text=True)
    assert "crm-approval-locked" in page
    with app.app_context():
        assert session().get(Customer, pk).city == "苏州市"
        assert engine.is_locked(session().get(Customer, pk))

    _decide(login_client(app, MANAGER), _pending_id(app, pk))
    assert rep.put(f"{CUSTOMERS}{pk}", json={"city": "无锡市"}).status_code == 200


def test_reject_and_send_back(app, admin_client):
    _staff(app)
    _process(admin_client, "credit", [("manager", "", "", "")])
    rep = login_client(app, "Sales Rep")
    manager = login_client(app, MANAGER)
    pk = add_customer(app, name="杭州西湖茶业", owner_id=user_id(app, "Sales Rep"))
    _submit(rep, pk)
    first = _pending_id(app, pk)
    _decide(manager, first, "reject")
    assert _instance(app, first).status == "pending"  # a rejection needs its reason
    with app.app_context():
        with pytest.raises(FieldError) as refused:
            engine.decide(
                session(),
                session().get(ApprovalInstance, first),
                app.appbuilder.sm.find_user(username=MANAGER),
                "send_back",
                "  ",
            )
        assert list(refused.value.messages) == ["comment"]
        session().rollback()
    _decide(manager, first, "send_back", "请补充营业执照")
    assert _instance(app, first).status == "sent_back"
    assert rep.put(f"{CUSTOMERS}{pk}", json={"city": "杭州市"}).status_code == 200  # unlocked
    _submit(rep, pk, comment="已补充")
    second = _pending_id(app, pk)
    _decide(manager, second, "reject", "额度过高")
    assert _instance(app, second).status == "rejected"
    assert [e["id"] for e in _events(app, "approval.rejected")] == [second]
    assert [e["id"] for e in _events(app, "approval.sent_back")] == [first]
    with app.app_context():
        told = session().scalars(
            select(Notification.title).where(Notification.user_id == user_id(app, "Sales Rep"))
        )
        assert len(list(told)) == 2  # the submitter hears of both outcomes


def test_reminder_and_escalation_happen_once_each(app, admin_client):
    _staff(app)
    _process(admin_client, "credit", [("manager", "", "4", BOSS)])
    rep = login_client(app, "Sales Rep")
    pk = add_customer(app, name="广州白云物流", owner_id=user_id(app, "Sales Rep"))
    _submit(rep, pk)
    instance = _pending_id(app, pk)

    def shift(**hours: int) -> None:
        with app.app_context():
            task = session().scalar(
                select(ApprovalTask).where(ApprovalTask.instance_id == instance)
            )
            for column, h in hours.items():
                setattr(task, column, utcnow() - timedelta(hours=h))
            session().commit()

    def run() -> dict[str, int]:
        with app.app_context():
            done = run_job(JOB_ID)
            assert done is not None and done.outcome == "ok", done and done.error
            return dict(done.counts or {})

    assert run() == {"reminded": 0, "escalated": 0}  # not half-way yet
    shift(remind_at=1)
    assert run() == {"reminded": 1, "escalated": 0}
    assert run() == {"reminded": 0, "escalated": 0}  # never twice
    shift(due_at=1)
    assert run() == {"reminded": 0, "escalated": 1}
    assert run() == {"reminded": 0, "escalated": 0}
    with app.app_context():
        manager_notes = session().scalars(
            select(Notification.title).where(Notification.user_id == user_id(app, MANAGER))
        )
        assert len(list(manager_notes)) == 2  # the task, then one reminder
    boss = login_client(app, BOSS)
    assert "广州白云物流" in boss.get("/approvals/").get_data(as_text=True)
    _decide(boss, instance)
    assert _instance(app, instance).status == "approved"


def test_history_on_the_customer_page(app, admin_client):
    _staff(app)
    _process(admin_client, "credit", [("manager", "", "", "")])
    rep = login_client(app, "Sales Rep")
    pk = add_customer(app, name="成都天府食品", owner_id=user_id(app, "Sales Rep"))
    _submit(rep, pk, comment="年度大单")
    _decide(login_client(app, MANAGER), _pending_id(app, pk), "send_back", "价格需复核")
    page = rep.get(f"/customer/{pk}").get_data(as_text=True)
    assert "crm-panel-approvals" in page
    assert "年度大单" in page and "价格需复核" in page
    assert page.count('class="crm-approval-action"') == 2
    assert "王经理" in page
    with app.app_context():
        pk_instance = session().scalar(select(ApprovalInstance.id))
    detail = rep.get(f"/approvals/{pk_instance}").get_data(as_text=True)
    assert "价格需复核" in detail and "crm-approval-decide" not in detail  # it has ended
    form = admin_client.get("/approvalprocesses/").get_data(as_text=True)
    assert 'data-name="credit"' in form


def test_a_non_approver_cannot_decide(app, admin_client):
    _staff(app)
    _process(admin_client, "credit", [("manager", "", "", "")])
    rep = login_client(app, "Sales Rep")
    pk = add_customer(app, name="南京紫金电子", owner_id=user_id(app, "Sales Rep"))
    _submit(rep, pk)
    instance = _pending_id(app, pk)
    assert rep.post(f"/approvals/{instance}/decide", data={"action": "approve"}).status_code == 404
    stranger = login_client(app, "Service Agent")
    assert (
        stranger.post(f"/approvals/{instance}/decide", data={"action": "approve"}).status_code
        == 404
    )
    assert login_client(app, FINANCE).get(f"/approvals/{instance}").status_code == 404
    assert _instance(app, instance).status == "pending"
    with app.app_context():
        with pytest.raises(PermissionDenied):
            engine.decide(
                session(),
                session().get(ApprovalInstance, instance),
                app.appbuilder.sm.find_user(username=BOSS),
                "approve",
            )
        session().rollback()


def test_the_admin_screen_names_the_bad_step(app, admin_client):
    page = _process(admin_client, "credit", [("manager", "", "", ""), ("user", "nobody", "", "")])
    text = page.get_data(as_text=True)
    assert "nobody" in text and "crm-approval-steps-editor" in text
    with app.app_context():
        assert session().scalar(select(ApprovalProcess.id)) is None


def test_processes_travel_in_configuration_bundles(app, admin_client):
    _staff(app)
    _process(
        admin_client,
        "credit",
        [("manager", "", "24", BOSS), ("role", "Finance", "", "")],
        conditions="credit_limit gt 100000",
    )
    with app.app_context():
        exported = bundle.export(session())
        section = exported["approval_processes"]
        assert section["credit"]["conditions"] == ["credit_limit gt 100000"]
        assert [s["kind"] for s in section["credit"]["steps"]] == ["manager", "role"]
        assert bundle.apply(session(), bundle.load(bundle.dump(exported))) == []  # unchanged

        copy = bundle.load(bundle.dump(exported))
        copy["approval_processes"]["credit_copy"] = deepcopy(copy["approval_processes"]["credit"])
        copy["approval_processes"]["credit"]["steps"].append(
            {"kind": "user", "targets": [BOSS], "timeout_hours": None, "escalate_to": None}
        )
        changes = bundle.apply(session(), copy)
        assert "approval_processes.credit_copy: added" in changes
        assert any(c.startswith("approval_processes.credit: steps (version 2)") for c in changes)
        again = bundle.export(session())["approval_processes"]
        assert again["credit_copy"]["steps"] == section["credit"]["steps"]
        assert len(again["credit"]["steps"]) == 3

        broken = bundle.load(bundle.dump(exported))
        broken["approval_processes"]["credit"]["steps"][0] = {"kind": "user", "targets": ["nobody"]}
        with pytest.raises(bundle.BundleError) as refused:
            bundle.apply(session(), broken)
        assert "approval_processes.credit.steps" in str(refused.value)


def test_the_nightly_reclaim_leaves_a_customer_waiting_for_approval_with_its_owner(
    app, admin_client
):
    from crm_core.customers.pool import RECLAIM_DAYS, reclaim_idle
    from crm_core.settings.store import set_setting

    _staff(app)
    _process(admin_client, "credit", [("manager", "", "", "")])
    rep = login_client(app, "Sales Rep")
    long_ago = utcnow() - timedelta(days=90)
    waiting = add_customer(
        app, name="苏州精工", owner_id=user_id(app, "Sales Rep"), created_at=long_ago
    )
    idle = add_customer(
        app, name="无锡纺织", owner_id=user_id(app, "Sales Rep"), created_at=long_ago
    )
    _submit(rep, waiting)
    with app.app_context():
        set_setting(RECLAIM_DAYS, 30)
        session().commit()
        assert reclaim_idle() == {"reclaimed": 1, "kept": 1}
        assert session().get(Customer, waiting).owner_id == user_id(app, "Sales Rep")
        assert session().get(Customer, idle).owner_id is None
