"""An automation rule built by an admin in a real browser, then seen at work.

On ``crm demo --serve`` the admin sets up 上海销售部 (two demo reps move into it) with a
round-robin assignment rule, then builds the automation rule "a new customer in 上海 in 制造业
goes to the Shanghai team in turn and gets a follow-up task due in two days" on the 自动化规则
form. The dry run on an existing Shanghai manufacturer names the next assignee and the task;
a customer then created on the customer screen gets that owner and that task, and the rule's
run log shows the run done. No request leaves the machine, the console stays clean, and the
automation pages show no English in zh_CN.
"""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import quote

import pytest
from browser_support import UI, log_in, submit

pytestmark = pytest.mark.browser

TEAM = "上海销售部"
REPS = ("芳 王", "军 李")  # wangfang and lijun as the demo's lists name them
ASSIGNMENT_RULE = "上海制造业轮流"
RULE = "shanghai_manufacturing"
CONDITIONS = "city starts_with 上海\nindustry eq 制造业"
SUBJECT = "首次跟进"
NEW_NAME = "上海浦江浏览器测试精密机械有限公司"

#: Latin words the automation pages may show in Chinese besides rule names: what the admin
#: types (the condition syntax, field names, the words action settings take, the event's
#: name), the protocol terms of the webhook's help, the run log's trigger keys and the names
#: of users who saved a version.
ALLOWED_LATIN = {
    # conditions: fields and operators, as typed and as the help teaches them
    "city",
    "industry",
    "status",
    "tier",
    "expected_close",
    "custom__grade",
    "eq",
    "ne",
    "gt",
    "ge",
    "lt",
    "le",
    "in",
    "contains",
    "starts_with",
    "empty",
    "not_empty",
    # words action settings take: people, task kinds, record values in texts
    "owner",
    "manager",
    "record",
    "name",
    "task",
    "call",
    "visit",
    "meeting",
    # the webhook: a term Chinese admins use as is, and its protocol
    "Webhook",
    "https",
    "POST",
    "JSON",
    "HMAC",
    "SHA",
    "CRM",
    "Signature",
    # the event as the event list names it, and the run log's trigger keys (event:42)
    "customer",
    "created",
    "event",
    # who saved a version
    "admin",
}


def _team_with_two_reps(ui: UI) -> None:
    """上海销售部 under 华东区, and two demo reps moved into it (the org screens)."""
    page = ui.page
    ui.goto("/teams/add")
    page.fill("#name", TEAM)
    page.select_option("#parent", label="华东区")
    submit(ui)
    assert "/teams/add" not in page.url, page.locator(".alert-danger").all_inner_texts()
    for rep in REPS:
        ui.goto("/profiles/list/")
        row = page.locator("table.table-hover tr", has_text=rep)
        row.locator("a[href*='/profiles/edit/']").first.click()
        page.wait_for_load_state()
        page.select_option("#team", label=TEAM)
        submit(ui)
        assert "/profiles/edit/" not in page.url, page.locator(".alert-danger").all_inner_texts()
    ui.goto("/profiles/list/")
    listed = page.locator("table.table-hover").last.inner_text()
    for rep in REPS:
        assert re.search(rf"{rep}\s+{TEAM}", listed), listed


def _assignment_rule(ui: UI) -> None:
    page = ui.page
    ui.goto("/assignmentrules/add")
    page.select_option("#model", "Customer")
    page.fill("#name", ASSIGNMENT_RULE)
    page.fill("#conditions", CONDITIONS)
    page.select_option("#team", label=TEAM)
    page.select_option("#strategy", "round_robin")
    submit(ui)
    assert "/assignmentrules/add" not in page.url, page.locator(".alert-danger").all_inner_texts()


def _build_the_rule(ui: UI) -> None:
    """The 自动化规则 form, as the admin fills it."""
    page = ui.page
    ui.goto("/automationrules/")
    page.locator("#crm-automation-rules a", has_text="新增自动化规则").click()
    page.wait_for_load_state()
    assert page.url.endswith("/automationrules/add"), page.url
    page.fill("#name", RULE)
    page.fill("#label_zh", "上海制造业新客户")
    page.fill("#label_en", "New Shanghai manufacturers")
    page.select_option("#model", "Customer")
    page.select_option("#trigger", "event")
    assert page.locator("#event_type").is_visible() and page.locator("#field").is_hidden()
    page.select_option("#event_type", "customer.created")
    page.fill("#conditions", CONDITIONS)
    rows = page.locator("#crm-automation-actions .crm-automation-action-row")
    rows.nth(0).locator("select[name=action_type]").select_option("assign")
    rows.nth(0).locator("textarea[name=action_params]").fill(f"rule = {ASSIGNMENT_RULE}")
    rows.nth(1).locator("select[name=action_type]").select_option("create_task")
    rows.nth(1).locator("textarea[name=action_params]").fill(
        f"subject = {SUBJECT} {{{{ record.name }}}}\ndue_days = 2"
    )
    page.locator("#crm-automation-rule-form form button[type=submit]").click()
    page.wait_for_load_state()
    assert page.url.rstrip("/").endswith("/automationrules"), page.locator(
        ".crm-error"
    ).all_inner_texts()
    row = page.locator(f"tr.crm-automation-rule[data-name={RULE}]")
    assert "上海制造业新客户" in row.inner_text(), row.inner_text()


def _switch_off_other_rules(ui: UI) -> None:
    """Only the admin's rule acts on new customers: any other one (the demo's) is switched off."""
    page = ui.page
    ui.goto("/automationrules/")
    others = page.locator(f"tr.crm-automation-rule:not([data-name={RULE}])")
    for n in range(others.count()):
        row = others.nth(n)
        button = row.locator("button.crm-automation-toggle")
        if button.inner_text().strip() == "停用":
            button.click()
            page.wait_for_load_state()
            assert "已停用。" in page.locator(".alert").first.inner_text()
    for n in range(others.count()):
        assert others.nth(n).locator("button.crm-automation-toggle").inner_text().strip() == "启用"


def _api(ui: UI, path: str, **filters: Any) -> dict[str, Any]:
    """A list of the REST API (with the browser's session), filtered on equal columns."""
    rison = ",".join(f"(col:{k},opr:eq,value:{v})" for k, v in filters.items())
    query = quote(f"(filters:!({rison}),page_size:100)")
    found = ui.page.request.get(f"{ui.base_url}/api/v1/{path}/?q={query}")
    assert found.status == 200, found.text()
    return dict(found.json())


def _existing_shanghai_manufacturer(ui: UI) -> tuple[int, str]:
    """A demo customer in 上海市 in 制造业, handed (through the API) to a rep outside the team, so
    the dry run must say that its task would go to the new owner, not the present one."""
    (team,) = _api(ui, "team", name=TEAM)["ids"]
    profiles = _api(ui, "userprofile")["result"]
    members = [p["user_id"] for p in profiles if p["team_id"] == team]
    outsider = next(p["user_id"] for p in profiles if p["team_id"] != team)
    assert len(members) == len(REPS), members
    found = _api(ui, "customer", city="上海市", industry="制造业")
    assert found["ids"], "the demo has no Shanghai manufacturer"
    pk, name = int(found["ids"][0]), str(found["result"][0]["name"])
    handed = ui.page.request.put(
        f"{ui.base_url}/api/v1/customer/{pk}",
        data=json.dumps({"owner_id": outsider}),
        headers={"Content-Type": "application/json"},
    )
    assert handed.status == 200, handed.text()
    return pk, name


def _dry_run(ui: UI, pk: int, name: str) -> tuple[str, str]:
    """The dry run on one customer: the predicted assignee and the task's due date."""
    page = ui.page
    ui.goto("/automationrules/")
    row = page.locator(f"tr.crm-automation-rule[data-name={RULE}]")
    row.locator("a", has_text="试运行").click()
    page.wait_for_load_state()
    page.fill("#records", str(pk))
    page.locator("#crm-automation-dry-run form button[type=submit]").click()
    page.wait_for_load_state()
    prediction = page.locator(f"tr.crm-automation-prediction[data-record='{pk}']")
    assert prediction.get_attribute("data-matches") == "yes", prediction.inner_text()
    assert "满足" in prediction.inner_text()
    lines = prediction.locator(".crm-automation-predicted").all_inner_texts()
    assert len(lines) == 2, lines
    assigned = re.search(rf"分配负责人.*负责人：(.+?)（{ASSIGNMENT_RULE}）", lines[0])
    assert assigned, lines[0]
    task = re.search(
        rf"创建任务.*任务“{SUBJECT} {re.escape(name)}”，执行人 (\S+)，截止 (\d{{4}}-\d\d-\d\d)",
        lines[1],
    )
    assert task, lines[1]
    in_two_days = (datetime.now(UTC) + timedelta(days=2)).strftime("%Y-%m-%d")
    assert task[2] == in_two_days, lines[1]
    return assigned[1].strip(), task[1]


def _new_customer(ui: UI) -> int:
    page = ui.page
    ui.goto("/customers/add")
    page.fill("#name", NEW_NAME)
    page.fill("#city", "上海")
    page.select_option("#industry", "制造业")
    submit(ui)
    assert "/customers/add" not in page.url, page.locator(".alert-danger").all_inner_texts()
    ui.goto(f"/customers/list/?_flt_3_name={NEW_NAME}")  # 名称 等于 (equals)
    hrefs = page.locator("table a[href*='/customers/show/']").evaluate_all(
        "links => links.map(a => a.getAttribute('href'))"
    )
    assert len(hrefs) == 1, hrefs
    return int(hrefs[0].rstrip("/").rsplit("/", 1)[1])


def _owner_and_task(ui: UI, pk: int) -> tuple[str, str, str]:
    """The new customer's owner on its 360° page, and its follow-up task's owner and due date."""
    page = ui.page
    ui.open_360(pk)
    owner = page.locator("#crm-customer-360 tr", has_text="负责人").first
    owner_text = owner.locator("td").first.inner_text().strip()
    entry = page.locator("#crm-timeline li", has_text=f"{SUBJECT} {NEW_NAME}")
    assert entry.count() == 1, page.locator("#crm-customer-360").inner_text()
    entry.locator("a").first.click()
    page.wait_for_load_state()
    details = page.locator("table").first.inner_text()
    due = re.search(r"截止时间\s+(\d{4}-\d\d-\d\d)", details)
    task_owner = re.search(r"负责人\s+(.+)", details)
    assert due and task_owner, details
    return owner_text, task_owner[1].strip(), due[1]


def _run_log(ui: UI, pk: int) -> None:
    page = ui.page
    ui.goto("/automationrules/")
    page.locator(f"tr.crm-automation-rule[data-name={RULE}] a[href$='/runs']").click()
    page.wait_for_load_state()
    run = page.locator(f"tr.crm-automation-run[data-record='{pk}']")
    assert run.count() == 1, page.locator("#crm-automation-runs").inner_text()
    assert run.get_attribute("data-status") == "done"
    text = run.inner_text()
    assert "已完成" in text and SUBJECT in text, text


def _english_words(ui: UI, container: str) -> set[str]:
    """Latin words in the page's own text (not in form fields or code samples)."""
    text = ui.page.locator(container).evaluate(
        """root => {
            const skip = new Set(["CODE", "INPUT", "TEXTAREA", "SELECT", "OPTION", "SCRIPT"]);
            const out = [];
            const walk = node => {
                if (node.nodeType === Node.TEXT_NODE) { out.push(node.textContent); return; }
                if (node.nodeType !== Node.ELEMENT_NODE || skip.has(node.tagName)) { return; }
                node.childNodes.forEach(walk);
            };
            walk(root);
            return out.join(" ");
        }"""
    )
    names = set(
        ui.page.locator("tr.crm-automation-rule").evaluate_all(
            "rows => rows.map(r => r.dataset.name)"
        )
    )
    return {
        w
        for w in re.findall(r"[A-Za-z][A-Za-z_]+", text)
        if w not in ALLOWED_LATIN and w not in names and w != RULE
    }


def _all_chinese(ui: UI, pk: int) -> None:
    """The automation pages in zh_CN: list, form, dry run and run log show no English."""
    page = ui.page
    found: dict[str, Any] = {}
    ui.goto("/automationrules/")
    found["list"] = _english_words(ui, "#crm-automation-rules")
    page.locator(f"tr.crm-automation-rule[data-name={RULE}] a", has_text=RULE).click()
    page.wait_for_load_state()
    found["form"] = _english_words(ui, "#crm-automation-rule-form")
    rule_path = page.url.rsplit("/edit", 1)[0].replace(ui.base_url, "")
    ui.goto(f"{rule_path}/dryrun?records={pk}")
    found["dry run"] = _english_words(ui, "#crm-automation-dry-run")
    ui.goto(f"{rule_path}/runs")
    found["run log"] = _english_words(ui, "#crm-automation-runs")
    assert not any(found.values()), found


def test_admin_builds_a_rule_dry_runs_it_and_a_new_customer_gets_owner_and_task(ui: UI) -> None:
    try:
        log_in(ui)
        _team_with_two_reps(ui)
        _assignment_rule(ui)
        _build_the_rule(ui)
        _switch_off_other_rules(ui)
        existing, existing_name = _existing_shanghai_manufacturer(ui)
        assignee, task_for = _dry_run(ui, existing, existing_name)
        pk = _new_customer(ui)
        owner, task_owner, due = _owner_and_task(ui, pk)
        assert owner == assignee, (owner, assignee)
        assert task_for == task_owner == assignee, (task_for, task_owner, assignee)
        assert due == (datetime.now(UTC) + timedelta(days=2)).strftime("%Y-%m-%d")
        _run_log(ui, pk)
        _all_chinese(ui, pk)
    except BaseException:
        ui.screenshot_on_failure()
        raise
    foreign = ui.traffic.foreign_requests()
    assert not foreign, f"requests left this machine: {foreign}"
    assert not ui.traffic.errors, "\n".join(ui.traffic.errors)
