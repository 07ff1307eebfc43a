"""Roles and permissions in the user's language: an admin in zh_CN reads 销售代表 and
"客户 · 列表" wherever a role or a permission is shown or picked, while the stored names stay the
English ones that record rules, approval steps and the command line use."""

from __future__ import annotations

import re
from typing import Any

from flask_appbuilder.security.sqla.models import PermissionView
from flask_babel import force_locale
from sqlalchemy import select
from test_translations import untranslated, visible_text

from crm_core.db import session
from crm_core.security.names import role_label, role_named
from crm_core.workflow.approvals.models import ApprovalProcess, ApprovalProcessVersion

#: The core's default roles as a zh_CN admin reads them.
ZH = {
    "Admin": "系统管理员",
    "Sales Manager": "销售经理",
    "Sales Rep": "销售代表",
    "Service Agent": "客服专员",
    "Marketing": "市场专员",
    "Analyst": "数据分析员",
    "Read-only": "只读用户",
    "Integration": "系统集成（接口）",
}
STORED = re.compile("|".join(rf"(?<![\w-]){re.escape(n)}(?![\w-])" for n in ZH))


def _role_id(app: Any, name: str) -> int:
    with app.app_context():
        return int(app.appbuilder.sm.find_role(name).id)


def _language_names(app: Any) -> list[str]:
    return [v["name"] for v in app.config["LANGUAGES"].values()]


def test_role_screens_name_roles_and_permissions_in_chinese(app, admin_client):
    rep_role, rep_user = _role_id(app, "Sales Rep"), None
    with app.app_context():
        rep_user = app.appbuilder.sm.find_user(username="t_rep").id
    pages = {
        "/users/list/": ["销售代表", "系统管理员"],
        f"/users/show/{rep_user}": ["销售代表"],
        f"/users/edit/{rep_user}": [*ZH.values()],  # the roles to pick from
        "/roles/list/": [*ZH.values(), "项权限"],
        f"/roles/show/{rep_role}": ["销售代表", "客户", "列表", "从公海领取"],
        f"/roles/edit/{rep_role}": ["客户 · 列表", "公海 · 菜单入口"],
        "/recordrules/list/": ["销售经理", "销售代表"],
        "/recordrules/add": [*ZH.values()],
        "/layouts/add": [*ZH.values()],
        "/apikeys/add": [*ZH.values()],
    }
    responses = {url: (admin_client.get(url), words) for url, words in pages.items()}
    problems = untranslated(responses, _language_names(app))
    shown = responses[f"/roles/show/{rep_role}"][0].get_data(as_text=True)
    if "<b>客户</b>：列表、查看" not in shown:  # a line per screen, its actions after it
        problems.append(f"/roles/show/{rep_role}: permissions not grouped by screen")
    for url, (response, _words) in responses.items():
        text = visible_text(response.get_data(as_text=True), _language_names(app))
        if url.startswith("/roles/edit/"):  # the name field holds the stored name
            text = text.replace('value="Sales Rep"', "")
        shown = sorted(set(STORED.findall(text)))
        if shown:
            problems.append(f"{url}: stored role names shown {shown}")
    assert not problems, "\n".join(problems)


def test_every_permission_of_the_app_reads_in_the_user_language(app):
    with app.test_request_context(), force_locale("zh_CN"):
        labels = [str(pv) for pv in session().scalars(select(PermissionView))]
        english = [t for t in labels if re.search("[A-Za-z]", t.replace("API", ""))]
        assert len(labels) > 200 and not english, english
    with app.test_request_context(), force_locale("en"):
        pairs = {str(pv) for pv in session().scalars(select(PermissionView))}
        assert {"Customers · List", "Shared pool · Menu entry"} <= pairs
        assert "Customers · Claim from the shared pool" in pairs
        assert not any("View ·" in p or "Api ·" in p for p in pairs), sorted(pairs)[:20]


def test_english_screens_show_the_english_labels(app, admin_client):
    assert admin_client.get("/lang/en").status_code == 302
    listing = visible_text(admin_client.get("/roles/list/").get_data(as_text=True))
    for label in ("Administrator", "Sales Rep", "Integration (API)", "Service Agent"):
        assert label in listing, label
    assert "销售代表" not in listing


def test_a_role_typed_by_its_chinese_label_is_stored_by_name(app, admin_client):
    with app.test_request_context():
        assert role_named("销售经理") == "Sales Manager"
        assert role_named(" Sales Manager ") == "Sales Manager"
        assert role_named("财务") == "财务"  # no such role: the step check names it
        assert role_label("财务") == "财务"  # an admin's own role reads as it was named
    data = {
        "name": "big_deal",
        "model": "Customer",
        "label_zh": "大单审批",
        "label_en": "Big deal approval",
        "active": "y",
        "join": "all",
        "conditions": "",
        "step_name": ["", ""],
        "step_kind": ["role", ""],
        "step_targets": ["销售经理", ""],
        "step_timeout_hours": ["", ""],
        "step_escalate_to": ["", ""],
    }
    page = admin_client.post("/approvalprocesses/add", data=data, follow_redirects=True)
    assert page.status_code == 200
    with app.app_context():
        found = select(ApprovalProcess).where(ApprovalProcess.name == "big_deal")
        process = session().scalar(found)
        assert process is not None, page.get_data(as_text=True)[-1500:]
        steps = session().scalar(
            select(ApprovalProcessVersion.steps).where(
                ApprovalProcessVersion.process_id == process.id
            )
        )
        pk = process.id
    assert steps[0]["targets"] == ["Sales Manager"]
    form = admin_client.get(f"/approvalprocesses/{pk}/edit").get_data(as_text=True)
    assert 'value="销售经理"' in form and 'value="Sales Manager"' not in form


def test_crm_users_create_takes_a_role_by_its_label(app):
    from crm_core.cli.users import ensure_user

    with app.app_context():
        created, _password = ensure_user("chen_jing", None, "chen.jing@example.cn", "数据分析员")
        assert created
        user = app.appbuilder.sm.find_user(username="chen_jing")
        assert [r.name for r in user.roles] == ["Analyst"]
