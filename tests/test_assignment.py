"""Assignment rules: who gets a new customer (round-robin or least loaded, within a team or a
list of users, with conditions, capacity, working hours and the shared pool)."""

from __future__ import annotations

import threading
from collections import Counter
from datetime import datetime
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import select

from crm_core.cli.users import ensure_user
from crm_core.customers.models import Contact, Customer
from crm_core.db import session
from crm_core.lowcode import bundle
from crm_core.org.models import Team, UserProfile
from crm_core.org.tree import refresh_paths
from crm_core.security.audit import AuditLog
from crm_core.workflow.assignment.engine import assign, preview
from crm_core.workflow.assignment.models import AssignmentRule, AssignmentTurn

#: 10:00 and 20:00 in Shanghai on Monday 2026-11-23, and 10:00 on Saturday 2026-11-28 (UTC).
MONDAY_MORNING = datetime(2026, 11, 23, 2, 0)
MONDAY_EVENING = datetime(2026, 11, 23, 12, 0)
SATURDAY_MORNING = datetime(2026, 11, 28, 2, 0)
SHANGHAI_REPS = ("sh_wang", "sh_li", "sh_zhang")


def _user(username: str, team: Team | None, first: str) -> int:
    ensure_user(username, None, f"{username}@example.cn", "Sales Rep", first=first)
    user = session().scalar(
        select(Team.__table__.metadata.tables["ab_user"].c.id).where(
            Team.__table__.metadata.tables["ab_user"].c.username == username
        )
    )
    session().add(UserProfile(user_id=user, team_id=team.id if team else None))
    session().commit()
    return int(user)


@pytest.fixture
def org(app: Flask) -> dict[str, Any]:
    """华东大区 with 上海销售部 (王, 李, 张) and below it 浦东组 (陈); 北京销售部 (赵)."""
    with app.app_context():
        east = Team(name="华东大区")
        session().add(east)
        session().flush()
        shanghai = Team(name="上海销售部", parent_id=east.id)
        beijing = Team(name="北京销售部")
        session().add_all([shanghai, beijing])
        session().flush()
        pudong = Team(name="浦东组", parent_id=shanghai.id)
        session().add(pudong)
        session().commit()
        refresh_paths()
        ids = {
            "east": east.id,
            "shanghai": shanghai.id,
            "beijing": beijing.id,
            "pudong": pudong.id,
        }
        for username, first in zip(SHANGHAI_REPS, ("王芳", "李强", "张伟"), strict=True):
            ids[username] = _user(username, shanghai, first)
        ids["pd_chen"] = _user("pd_chen", pudong, "陈静")
        ids["bj_zhao"] = _user("bj_zhao", beijing, "赵磊")
        return ids


def _rule(**fields: Any) -> AssignmentRule:
    users = fields.pop("users", [])
    rule = AssignmentRule(model="Customer", **fields)
    if users:
        user_table = Team.__table__.metadata.tables["ab_user"]
        from flask_appbuilder.security.sqla.models import User

        rule.users = list(session().scalars(select(User).where(user_table.c.id.in_(users))))
    session().add(rule)
    session().commit()
    return rule


def _new_customer(name: str, **fields: Any) -> Customer:
    customer = Customer(name=name, **fields)
    session().add(customer)
    session().flush()
    return customer


def _assign_new(name: str, now: datetime = MONDAY_MORNING, **fields: Any) -> Any:
    customer = _new_customer(name, **fields)
    result = assign(session(), customer, now=now)
    session().commit()
    return customer, result


def test_round_robin_gives_each_team_member_a_turn_in_order(app, org):
    with app.app_context():
        _rule(name="上海客户", team_id=org["shanghai"], strategy="round_robin")
        owners = [_assign_new(f"客户{i}")[0].owner_id for i in range(6)]
        reps = [org[u] for u in SHANGHAI_REPS]
        assert owners == reps + reps
        customer = session().scalar(select(Customer).where(Customer.name == "客户0"))
        assert customer.team_id == org["shanghai"]


def test_shanghai_manufacturers_go_to_the_shanghai_team(app, org):
    with app.app_context():
        _rule(
            name="上海制造业",
            conditions=[
                {"field": "city", "op": "eq", "value": "上海"},
                {"field": "industry", "op": "eq", "value": "制造业"},
            ],
            team_id=org["shanghai"],
            position=10,
        )
        _, matched = _assign_new("上海华东精密机械有限公司", city="上海", industry="制造业")
        assert matched.assigned and matched.rule_name == "上海制造业"
        assert matched.user_id == org["sh_wang"]
        beijing, other = _assign_new("北京精工机械有限公司", city="北京", industry="制造业")
        assert other.outcome == "no_rule" and beijing.owner_id is None
        finance, _ = _assign_new("上海浦江银行", city="上海", industry="金融")
        assert finance.owner_id is None


def test_sub_teams_are_members_only_when_the_rule_says_so(app, org):
    with app.app_context():
        rule = _rule(name="华东", team_id=org["shanghai"], include_subteams=True)
        names = {c.user_id for c in preview(session(), Customer(name="x"), rule).candidates}
        assert names == {org[u] for u in SHANGHAI_REPS} | {org["pd_chen"]}
        rule.include_subteams = False
        session().commit()
        names = {c.user_id for c in preview(session(), Customer(name="x"), rule).candidates}
        assert org["pd_chen"] not in names


def test_parallel_assignments_share_turns_fairly(app, org):
    with app.app_context():
        _rule(name="上海客户", team_id=org["shanghai"])
    errors: list[BaseException] = []

    def work(prefix: str) -> None:
        try:
            with app.app_context():
                for i in range(9):
                    _assign_new(f"{prefix}{i}")
                session().close()
        except BaseException as exc:  # noqa: BLE001 - reported by the test
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(p,)) for p in ("甲", "乙")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors, errors
    with app.app_context():
        owners = Counter(session().scalars(select(Customer.owner_id)))
        assert sum(owners.values()) == 18
        assert set(owners) == {org[u] for u in SHANGHAI_REPS}
        assert all(5 <= n <= 7 for n in owners.values()), owners


def test_a_member_at_capacity_is_skipped_and_archived_records_do_not_count(app, org):
    with app.app_context():
        _rule(name="上海客户", team_id=org["shanghai"], capacity=2)
        for i in range(2):
            session().add(Customer(name=f"王的客户{i}", owner_id=org["sh_wang"]))
        session().add(Customer(name="李的旧客户", owner_id=org["sh_li"], active=False))
        session().commit()
        owners = [_assign_new(f"新客户{i}")[0].owner_id for i in range(4)]
        # 王 is full; 李 (one archived customer) and 张 take two each, then everyone is full.
        assert owners == [org["sh_li"], org["sh_zhang"], org["sh_li"], org["sh_zhang"]]
        customer, result = _assign_new("再来一个")
        assert result.outcome == "over_capacity" and customer.owner_id is None
        assert [c.reason for c in result.candidates] == ["已达上限（2）"] * 3


def test_outside_working_hours_the_next_rule_or_the_pool_takes_over(app, org):
    with app.app_context():
        office = _rule(
            name="上海工作时间",
            team_id=org["shanghai"],
            days="1,2,3,4,5",
            start_time="09:00",
            end_time="18:00",
            position=10,
        )
        _rule(name="值班", users=[org["bj_zhao"]], position=20)
        _, day = _assign_new("白天的客户", now=MONDAY_MORNING)
        assert day.rule_name == "上海工作时间" and day.user_id == org["sh_wang"]
        _, evening = _assign_new("晚上的客户", now=MONDAY_EVENING)
        assert evening.rule_name == "值班" and evening.user_id == org["bj_zhao"]
        _, weekend = _assign_new("周末的客户", now=SATURDAY_MORNING)
        assert weekend.user_id == org["bj_zhao"]
        office.when_unavailable = "pool"
        session().commit()
        owned = Customer(name="转介绍客户", owner_id=org["sh_li"])
        session().add(owned)
        session().flush()
        pooled = assign(session(), owned, now=MONDAY_EVENING)
        session().commit()
        assert pooled.outcome == "outside_hours" and pooled.pooled
        assert owned.owner_id is None  # in the shared pool (公海)


def test_least_loaded_picks_the_member_with_fewest_active_customers(app, org):
    with app.app_context():
        _rule(name="上海客户", team_id=org["shanghai"], strategy="least_loaded")
        for owner, count in (("sh_wang", 3), ("sh_li", 1), ("sh_zhang", 2)):
            for i in range(count):
                session().add(Customer(name=f"{owner}{i}", owner_id=org[owner]))
        session().commit()
        picked = [_assign_new(f"新{i}")[1] for i in range(3)]
        # 李 has fewest; then 李 and 张 both own two, and the tie goes by turn: 张, then 李.
        assert [p.user_id for p in picked] == [org["sh_li"], org["sh_zhang"], org["sh_li"]]
        assert {c.user_id: c.load for c in picked[0].candidates} == {
            org["sh_wang"]: 3,
            org["sh_li"]: 1,
            org["sh_zhang"]: 2,
        }


def test_inactive_users_are_skipped(app, org):
    with app.app_context():
        from flask_appbuilder.security.sqla.models import User

        _rule(name="上海客户", team_id=org["shanghai"])
        session().get(User, org["sh_li"]).active = False
        session().commit()
        owners = [_assign_new(f"客户{i}")[0].owner_id for i in range(4)]
        assert owners == [org["sh_wang"], org["sh_zhang"]] * 2
        for user in SHANGHAI_REPS:
            session().get(User, org[user]).active = False
        session().commit()
        _, result = _assign_new("没人接")
        assert result.outcome == "no_members"


def test_preview_does_not_move_the_turn(app, org):
    with app.app_context():
        _rule(name="上海客户", team_id=org["shanghai"])
        customer = _new_customer("预览客户")
        first = preview(session(), customer, now=MONDAY_MORNING)
        again = preview(session(), customer, now=MONDAY_MORNING)
        assert first.user_id == again.user_id == org["sh_wang"]
        assert customer.owner_id is None
        done = assign(session(), customer, now=MONDAY_MORNING)
        session().commit()
        assert done.user_id == org["sh_wang"]
        assert preview(session(), Customer(name="下一个")).user_id == org["sh_li"]


def test_the_owner_change_is_in_the_audit_log(app, org):
    with app.app_context():
        _rule(name="上海客户", team_id=org["shanghai"], set_team=False)
        customer = _new_customer("审计客户")
        session().commit()
        assign(session(), customer, now=MONDAY_MORNING)
        session().commit()
        entry = session().scalar(
            select(AuditLog)
            .where(AuditLog.model == "customer", AuditLog.record_id == customer.id)
            .order_by(AuditLog.id.desc())
        )
        assert entry.operation == "update"
        assert entry.changes["owner_id"] == [None, org["sh_wang"]]
        assert "team_id" not in entry.changes


def test_a_model_without_an_owner_cannot_be_assigned(app, org):
    with app.app_context(), pytest.raises(TypeError):
        assign(session(), Contact(name="张三"))


def test_rules_travel_in_configuration_bundles(app, org):
    with app.app_context():
        _rule(
            name="上海制造业",
            conditions=[{"field": "industry", "op": "eq", "value": "制造业"}],
            team_id=org["shanghai"],
            include_subteams=True,
            users=[org["bj_zhao"]],
            strategy="least_loaded",
            capacity=200,
            days="1,2,3,4,5",
            start_time="09:00",
            end_time="18:00",
            when_unavailable="pool",
        )
        exported = bundle.export(session())
        section = exported["assignment_rules"]
        assert section["Customer"]["上海制造业"]["team"] == "华东大区 / 上海销售部"
        assert section["Customer"]["上海制造业"]["users"] == ["bj_zhao"]
        for rule in session().scalars(select(AssignmentRule)):
            session().delete(rule)
        session().commit()
        changes = bundle.apply(session(), bundle.load(bundle.dump(exported)))
        assert "assignment_rules.Customer.上海制造业: added" in changes
        assert bundle.export(session())["assignment_rules"] == section
        assert bundle.apply(session(), exported, dry_run=True) == []
        broken = {"Customer": {"坏规则": {"team": "无此部门"}}}
        with pytest.raises(bundle.BundleError) as refused:
            bundle.apply(session(), {"crm_config": 1, "assignment_rules": broken})
        assert "assignment_rules.Customer.坏规则: no team 无此部门 here" in refused.value.problems


def _form(admin_client, **form: str):  # type: ignore[no-untyped-def]
    data = {
        "model": "Customer",
        "join": "all",
        "conditions": "",
        "strategy": "round_robin",
        "when_unavailable": "next_rule",
        "position": "10",
        "active": "y",
        "set_team": "y",
        **form,
    }
    return admin_client.post("/assignmentrules/add", data=data, follow_redirects=True)


def test_admins_write_rules_on_the_screen_and_preview_the_next_assignee(app, org, admin_client):
    admin_client.get("/lang/en")
    wrong = _form(
        admin_client,
        name="上海客户",
        conditions="city eq 上海\nregion eq 华东",
        team=str(org["shanghai"]),
        days="1-8",
        start_time="9点",
    )
    page = wrong.get_data(as_text=True)
    assert "There is no field region." in page
    assert "Days are numbers from 1 (Monday) to 7 (Sunday)." in page
    assert "9点 is not a time like 09:00." in page
    no_target = _form(admin_client, name="无人规则").get_data(as_text=True)
    assert "Choose a team or users." in no_target
    saved = _form(
        admin_client,
        name="上海客户",
        conditions="city eq 上海\nindustry eq 制造业",
        team=str(org["shanghai"]),
        days="1-5",
        start_time="9:00",
        end_time="18:00",
        capacity="50",
    )
    assert saved.status_code == 200 and saved.request.path != "/assignmentrules/add"
    with app.app_context():
        rule = session().scalar(select(AssignmentRule))
        assert rule.conditions == [
            {"field": "city", "op": "eq", "value": "上海"},
            {"field": "industry", "op": "eq", "value": "制造业"},
        ]
        assert (rule.days, rule.start_time, rule.end_time) == ("1,2,3,4,5", "09:00", "18:00")
        rule.days = rule.start_time = rule.end_time = None  # the preview runs at any hour
        session().commit()
        rule_id = rule.id
    shown = admin_client.get(f"/assignmentrules/show/{rule_id}").get_data(as_text=True)
    assert f"/assignmentrules/preview/{rule_id}" in shown
    customer_id = admin_client.post(
        "/api/v1/customer/", json={"name": "北京客户", "city": "北京"}
    ).get_json()["id"]
    page = admin_client.get(f"/assignmentrules/preview/{rule_id}?record={customer_id}")
    text = page.get_data(as_text=True)
    assert "Next record goes to 王芳." in text
    assert "The rule's conditions do not hold for 北京客户." in text
    assert admin_client.get(f"/assignmentrules/preview/{rule_id}").status_code == 200
    with app.app_context():
        assert session().scalar(select(AssignmentTurn)) is None  # nothing moved


def test_a_reps_new_customer_may_go_to_a_colleague_but_not_someone_elses(app, org):
    from flask_appbuilder.security.sqla.models import User

    from crm_core.errors import PermissionDenied
    from crm_core.security.rules import acting_as

    with app.app_context():
        _rule(name="上海客户", team_id=org["shanghai"])
        theirs = Customer(name="赵的客户", owner_id=org["bj_zhao"])
        session().add(theirs)
        session().commit()
        rep = session().get(User, org["sh_zhang"])
        with acting_as(rep):
            mine = Customer(name="张录入的客户", owner_id=rep.id)
            session().add(mine)
            result = assign(session(), mine, now=MONDAY_MORNING)
            session().commit()
            assert result.user_id == org["sh_wang"]
            with pytest.raises(PermissionDenied):
                assign(session(), session().get(Customer, theirs.id), now=MONDAY_MORNING)
        session().rollback()
        assert session().get(Customer, mine.id).owner_id == org["sh_wang"]
        assert session().get(Customer, theirs.id).owner_id == org["bj_zhao"]
