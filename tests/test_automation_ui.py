"""Administration → 自动化规则 as an admin uses it in the browser (through the test client):
the list, the form with its errors next to the fields in Chinese and English, versions,
switching on and off, the dry run, the run log with its filters, pages and "Try again"; and a
sales rep kept out."""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import func, select

from crm_core.customers.models import Customer
from crm_core.db import session, utcnow
from crm_core.testing.plugin import login_client
from crm_core.workflow.automation import definitions
from crm_core.workflow.automation.models import AutomationRule, AutomationRun

HUGE = "99999999999999999999999"

#: What the admin reads, by language.
TEXTS = {
    "zh_CN": {
        "title": "自动化规则",
        "required": "此项为必填项。",
        "no_region": "没有字段 region。",
        "unknown_setting": "动作 1：未知设置项 colour。",
        "bad_line": "动作 2：第 1 行不是“设置项 = 值”的格式。",
        "saved": "已保存。",
        "version_2": "已保存为第 2 版。",
        "off": "已停用。",
        "on": "已启用。",
        "bad_records": "记录编号须为以逗号分隔的整数。",
        "met": "满足",
        "not_met": "不满足",
        "done": "已完成",
        "failed": "失败",
        "retrying": "将在一分钟内重试此次运行。",
    },
    "en": {
        "title": "Automation rules",
        "required": "This field is required.",
        "no_region": "There is no field region.",
        "unknown_setting": "Action 1: unknown setting colour.",
        "bad_line": "Action 2: Line 1 is not 'setting = value'.",
        "saved": "Saved.",
        "version_2": "Saved as version 2.",
        "off": "Switched off.",
        "on": "Switched on.",
        "bad_records": "Record numbers are whole numbers separated by commas.",
        "met": "Met",
        "not_met": "Not met",
        "done": "Done",
        "failed": "Failed",
        "retrying": "The run will be tried again within a minute.",
    },
}


def _speak(client: FlaskClient, language: str) -> dict[str, str]:
    assert client.get(f"/lang/{language}").status_code in (200, 302)
    return TEXTS[language]


def _text(page: Any) -> str:
    return str(page.get_data(as_text=True))


def _unescaped(html: str) -> str:
    return html.replace("&#39;", "'").replace("&quot;", '"').replace("&gt;", ">")


def _errors(html: str, field: str) -> list[str]:
    """The error lines shown next to ``field`` on the rule form."""
    found = re.findall(rf'<span[^>]*crm-error[^>]*data-field="{field}"[^>]*>(.*?)</span>', html)
    return [_unescaped(e) for e in found]


def _form(**fields: Any) -> dict[str, Any]:
    """A rule form as the browser posts it: one row per action (type and settings)."""
    steps = fields.pop("steps", [("create_task", "subject = 跟进 {{ record.name }}\ndue_days = 2")])
    data: dict[str, Any] = {
        "name": "shanghai_follow_up",
        "label_zh": "上海客户跟进",
        "label_en": "Shanghai follow-up",
        "model": "Customer",
        "active": "y",
        "position": "10",
        "trigger": "event",
        "event_type": "customer.created",
        "join": "all",
        "conditions": "city eq 上海",
        **fields,
    }
    data["action_type"] = [t for t, _p in steps] + [""]
    data["action_params"] = [p for _t, p in steps] + [""]
    return data


def _rules(app: Flask) -> list[AutomationRule]:
    with app.app_context():
        rules = list(session().scalars(select(AutomationRule).order_by(AutomationRule.id)))
        session().expunge_all()
        return rules


@pytest.mark.parametrize("language", ["zh_CN", "en"])
def test_a_wrong_rule_is_shown_again_with_each_error_next_to_its_field(
    app: Flask, admin_client: FlaskClient, language: str
) -> None:
    say = _speak(admin_client, language)
    listed = admin_client.get("/automationrules/")
    assert listed.status_code == 200 and say["title"] in _text(listed)
    assert admin_client.get("/automationrules/add").status_code == 200

    typed = "city eq 上海\nregion eq 华东"
    page = admin_client.post(
        "/automationrules/add",
        data=_form(
            label_zh="",
            conditions=typed,
            steps=[
                ("create_task", "subject = 跟进\ncolour = red"),
                ("notify", "title 没有等号"),
            ],
        ),
    )
    assert page.status_code == 200
    html = _text(page)
    assert _errors(html, "label_zh") == [say["required"]]
    assert _errors(html, "conditions") == [say["no_region"]]
    actions = _errors(html, "actions")
    assert say["unknown_setting"] in actions and say["bad_line"] in actions, actions
    assert _errors(html, "name") == [] and _errors(html, "model") == []
    assert typed in html and "colour = red" in html  # what was typed is kept
    assert _rules(app) == []

    nameless = _text(admin_client.post("/automationrules/add", data=_form(name="")))
    assert _errors(nameless, "name") == [say["required"]]
    no_action = _text(admin_client.post("/automationrules/add", data=_form(steps=[])))
    assert len(_errors(no_action, "actions")) == 1
    assert _rules(app) == []


def test_a_rule_is_saved_edited_into_version_2_and_switched_off_and_on(
    app: Flask, admin_client: FlaskClient
) -> None:
    say = _speak(admin_client, "zh_CN")
    saved = admin_client.post("/automationrules/add", data=_form(), follow_redirects=True)
    assert saved.request.path == "/automationrules/" and say["saved"] in _text(saved)
    (rule,) = _rules(app)
    assert (rule.name, rule.label_zh, rule.trigger, rule.event_type, rule.version) == (
        "shanghai_follow_up",
        "上海客户跟进",
        "event",
        "customer.created",
        1,
    )
    assert rule.conditions == [{"field": "city", "op": "eq", "value": "上海"}]
    assert rule.actions == [
        {"type": "create_task", "params": {"subject": "跟进 {{ record.name }}", "due_days": "2"}}
    ]
    twice = _text(admin_client.post("/automationrules/add", data=_form()))
    assert _errors(twice, "name") == ["已有同名的自动化规则。"]

    form = _text(admin_client.get(f"/automationrules/{rule.id}/edit"))
    assert "subject = 跟进 {{ record.name }}" in form and "city eq 上海" in form

    edited = admin_client.post(
        f"/automationrules/{rule.id}/edit",
        data=_form(name="renamed", conditions="city eq 上海\nindustry eq 制造业"),
        follow_redirects=True,
    )
    assert say["version_2"] in _text(edited)
    (rule,) = _rules(app)
    assert rule.name == "shanghai_follow_up"  # the name stays
    assert rule.version == 2 and len(rule.conditions) == 2
    row = re.search(
        r'<tr class="crm-automation-rule" data-name="shanghai_follow_up">(.*?)</tr>',
        _text(edited),
        re.S,
    )
    assert row and "<td>2</td>" in row[1], _text(edited)[-3000:]
    versions = _text(admin_client.get(f"/automationrules/{rule.id}/edit"))
    table = versions[versions.index('id="crm-automation-versions"') :]
    assert "industry eq 制造业" in table and "<td>1</td>" in table and "<td>2</td>" in table
    unchanged = admin_client.post(
        f"/automationrules/{rule.id}/edit",
        data=_form(conditions="city eq 上海\nindustry eq 制造业"),
        follow_redirects=True,
    )
    assert say["saved"] in _text(unchanged) and _rules(app)[0].version == 2

    off = admin_client.post(f"/automationrules/{rule.id}/toggle", follow_redirects=True)
    assert say["off"] in _text(off) and _rules(app)[0].active is False
    assert "启用" in _text(off)
    on = admin_client.post(f"/automationrules/{rule.id}/toggle", follow_redirects=True)
    assert say["on"] in _text(on) and _rules(app)[0].active is True


TASK_IN_TWO_DAYS = {
    "type": "create_task",
    "params": {"subject": "首次拜访 {{ record.name }}", "due_days": "2"},
}


def _task_rule(app: Flask, action: dict[str, Any] = TASK_IN_TWO_DAYS) -> int:
    """New 上海 manufacturers get ``action`` (a follow-up task in two days)."""
    with app.app_context():
        rule = AutomationRule(name="sh_mfg_task")
        data = definitions.normalised(
            {
                "label_zh": "上海制造业跟进",
                "model": "Customer",
                "trigger": "event",
                "event_type": "customer.created",
                "conditions": ["city eq 上海", "industry eq 制造业"],
                "actions": [action],
            }
        )
        definitions.save(session(), rule, data, "t_admin")
        session().commit()
        return rule.id


def test_the_dry_run_predicts_for_chosen_records_and_for_the_newest(
    app: Flask, admin_client: FlaskClient
) -> None:
    say = _speak(admin_client, "zh_CN")
    with app.app_context():
        customers = [
            Customer(name="上海精工机械有限公司", city="上海", industry="制造业"),
            Customer(name="北京云图软件有限公司", city="北京", industry="信息技术"),
        ]
        session().add_all(customers)
        session().commit()
        shanghai, beijing = (c.id for c in customers)
    rule_id = _task_rule(app)

    page = _text(
        admin_client.get(f"/automationrules/{rule_id}/dryrun?records={shanghai}，{beijing}")
    )
    rows = dict(re.findall(r'data-record="(\d+)" data-matches="(yes|no)"', page))
    assert rows == {str(shanghai): "yes", str(beijing): "no"}
    assert say["met"] in page and say["not_met"] in page
    due = (utcnow() + timedelta(days=2)).strftime("%Y-%m-%d")
    predicted = re.findall(r'class="crm-automation-predicted">(.*?)</div>', page)
    assert len(predicted) == 1 and "创建任务" in predicted[0], predicted
    assert "任务“首次拜访 上海精工机械有限公司”" in predicted[0] and f"截止 {due}" in predicted[0]

    sample = _text(admin_client.get(f"/automationrules/{rule_id}/dryrun"))
    assert set(re.findall(r'data-record="(\d+)"', sample)) == {str(shanghai), str(beijing)}

    for bad in ("abc", "1;2", HUGE):
        named = admin_client.get(f"/automationrules/{rule_id}/dryrun?records={bad}")
        assert named.status_code == 200, bad
        assert say["bad_records"] in _text(named), bad
    with app.app_context():  # nothing was written
        assert session().scalar(select(func.count()).select_from(AutomationRun)) == 0


def _log(
    app: Flask, rule_id: int, count: int, status: str = "done", first: int = 1, **fields: Any
) -> list[int]:
    """``count`` logged runs of the rule (as the engine writes them), oldest first."""
    with app.app_context():
        runs = [
            AutomationRun(
                rule_id=rule_id,
                rule_version=1,
                trigger_key=f"event:{1000 + first + n}",
                model="Customer",
                record_id=first + n,
                status=status,
                attempts=1,
                started_at=utcnow() - timedelta(minutes=count - n),
                duration_ms=12,
                **fields,
            )
            for n in range(count)
        ]
        session().add_all(runs)
        session().commit()
        return [r.id for r in runs]


def _shown_runs(html: str) -> list[tuple[str, str]]:
    return re.findall(r'class="crm-automation-run" data-status="(\w+)" data-record="(\d+)"', html)


def test_the_run_log_shows_outcomes_filters_pages_and_tries_a_failed_run_again(
    app: Flask, admin_client: FlaskClient
) -> None:
    say = _speak(admin_client, "zh_CN")
    # The notes copied into the credit limit: 五万 is no amount, so that run fails.
    copy_notes = {
        "type": "set_field",
        "params": {"field": "credit_limit", "value": "{{ record.notes }}"},
    }
    rule_id = _task_rule(app, copy_notes)
    good = admin_client.post(
        "/api/v1/customer/",
        json={
            "name": "上海精工机械有限公司",
            "city": "上海",
            "industry": "制造业",
            "notes": "50000",
        },
    )
    bad = admin_client.post(
        "/api/v1/customer/",
        json={"name": "上海模具有限公司", "city": "上海", "industry": "制造业", "notes": "五万"},
    )
    assert good.status_code == bad.status_code == 201, bad.get_data(as_text=True)
    good_id, bad_id = good.get_json()["id"], bad.get_json()["id"]

    page = _text(admin_client.get(f"/automationrules/{rule_id}/runs"))
    assert _shown_runs(page) == [("failed", str(bad_id)), ("done", str(good_id))]
    assert "credit_limit：— → 50000" in page
    assert f"客户 {bad_id}" in page  # the record type in the user's language
    error = re.search(r'crm-automation-error">(.*?)</div>', page)
    assert error and "credit_limit" in error[1] and "五万" in error[1], page[-3000:]
    assert say["done"] in page and say["failed"] in page

    failed_only = _text(admin_client.get(f"/automationrules/{rule_id}/runs?status=failed"))
    assert _shown_runs(failed_only) == [("failed", str(bad_id))]
    assert (
        _shown_runs(_text(admin_client.get(f"/automationrules/{rule_id}/runs?status=loop"))) == []
    )

    with app.app_context():
        failed_run = session().scalar(
            select(AutomationRun.id).where(AutomationRun.status == "failed")
        )
    retried = admin_client.post(f"/automationrules/runs/{failed_run}/retry", follow_redirects=True)
    assert retried.request.path == f"/automationrules/{rule_id}/runs"
    assert say["retrying"] in _text(retried)
    with app.app_context():
        run = session().get(AutomationRun, failed_run)
        assert run.status == "retry" and run.next_attempt_at <= utcnow()
    with app.app_context():
        done_id = session().scalar(select(AutomationRun.id).where(AutomationRun.status == "done"))
    admin_client.post(f"/automationrules/runs/{done_id}/retry")
    with app.app_context():
        assert session().get(AutomationRun, done_id).status == "done"


def test_the_run_log_pages_back_with_before(app: Flask, admin_client: FlaskClient) -> None:
    _speak(admin_client, "zh_CN")
    rule_id = _task_rule(app)
    ids = _log(app, rule_id, 120)
    first = _text(admin_client.get(f"/automationrules/{rule_id}/runs"))
    records = [int(r) for _s, r in _shown_runs(first)]
    assert records == list(range(120, 70, -1))  # newest fifty
    older = re.search(r'href="([^"]*before=(\d+)[^"]*)"', first)
    assert older and int(older[2]) == ids[70]
    second = _text(admin_client.get(older[1].replace("&amp;", "&")))
    assert [int(r) for _s, r in _shown_runs(second)] == list(range(70, 20, -1))
    third = _text(admin_client.get(f"/automationrules/{rule_id}/runs?before={ids[20]}"))
    assert [int(r) for _s, r in _shown_runs(third)] == list(range(20, 0, -1))
    assert "before=" not in third  # no older page

    _log(
        app,
        rule_id,
        3,
        status="retry",
        first=500,
        error="URLError: connection refused",
        next_attempt_at=utcnow() + timedelta(minutes=4),
    )
    retrying = _text(admin_client.get(f"/automationrules/{rule_id}/runs?status=retry"))
    assert [s for s, _r in _shown_runs(retrying)] == ["retry"] * 3
    assert "失败待重试" in retrying and "URLError: connection refused" in retrying
    paged = _text(admin_client.get(f"/automationrules/{rule_id}/runs?status=done&before={ids[2]}"))
    assert [int(r) for _s, r in _shown_runs(paged)] == [2, 1]


def test_hand_made_addresses_are_not_found_or_ignored_never_an_error(
    app: Flask, admin_client: FlaskClient
) -> None:
    rule_id = _task_rule(app)
    _log(app, rule_id, 3)
    for path in (
        f"/automationrules/{HUGE}/edit",
        f"/automationrules/{HUGE}/runs",
        f"/automationrules/{HUGE}/dryrun",
        "/automationrules/abc/edit",
        "/automationrules/abc/runs",
        "/automationrules/-1/runs",
        f"/automationrules/{rule_id + 1000}/edit",
    ):
        assert admin_client.get(path).status_code == 404, path
    for path in (
        f"/automationrules/{HUGE}/toggle",
        f"/automationrules/runs/{HUGE}/retry",
        "/automationrules/runs/abc/retry",
        "/automationrules/runs/424242/retry",
    ):
        assert admin_client.post(path).status_code == 404, path
    for query in (f"before={HUGE}", "before=abc", "status=bogus", "status=", "before="):
        page = admin_client.get(f"/automationrules/{rule_id}/runs?{query}")
        assert page.status_code == 200, query
        assert len(_shown_runs(_text(page))) == 3, query  # the filter is ignored
    for query in ("before=1", "before=-5"):
        nothing_older = admin_client.get(f"/automationrules/{rule_id}/runs?{query}")
        assert nothing_older.status_code == 200 and _shown_runs(_text(nothing_older)) == []


def test_a_sales_rep_cannot_see_or_change_automation_rules(
    app: Flask, admin_client: FlaskClient
) -> None:
    rule_id = _task_rule(app)
    (run_id,) = _log(app, rule_id, 1, status="failed", error="boom")
    rep = login_client(app, "Sales Rep")

    def refused(response: Any) -> bool:
        if response.status_code == 403:
            return True
        return response.status_code == 302 and "/login" in response.headers.get("Location", "")

    for path in (
        "/automationrules/",
        "/automationrules/add",
        f"/automationrules/{rule_id}/edit",
        f"/automationrules/{rule_id}/dryrun",
        f"/automationrules/{rule_id}/runs",
    ):
        assert refused(rep.get(path)), path
    assert refused(rep.post("/automationrules/add", data=_form(name="rep_rule")))
    assert refused(rep.post(f"/automationrules/{rule_id}/edit", data=_form(label_zh="改了")))
    assert refused(rep.post(f"/automationrules/{rule_id}/toggle"))
    assert refused(rep.post(f"/automationrules/runs/{run_id}/retry"))
    (rule,) = _rules(app)
    assert (rule.name, rule.label_zh, rule.active, rule.version) == (
        "sh_mfg_task",
        "上海制造业跟进",
        True,
        1,
    )
    with app.app_context():
        assert session().get(AutomationRun, run_id).status == "failed"
    menu = _text(rep.get("/"))
    assert "/automationrules/" not in menu
    assert "/automationrules/" in _text(admin_client.get("/automationrules/"))
