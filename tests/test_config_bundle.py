"""Configuration bundles: `crm config export | diff | import` move every customisation between
instances and backends, all or nothing."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner, Result
from flask import Flask
from flask.cli import ScriptInfo
from helpers import define_field
from sqlalchemy import select

from crm_core.cli import main
from crm_core.cli.db import upgrade_all
from crm_core.cli.users import ensure_user
from crm_core.db import session
from crm_core.lowcode.fields import FieldDefinition
from crm_core.lowcode.validation import ValidationRule
from crm_core.security.models import RecordRule
from crm_core.testing.databases import backend_url, drop, reachable
from crm_core.testing.plugin import PASSWORD, ROLE_USERS, login_client, make_test_app

CUSTOMERS = "/api/v1/customer/"


def crm(app: Flask, *args: str) -> Result:
    return CliRunner().invoke(main, list(args), obj=ScriptInfo(create_app=lambda: app))


def customise(app: Flask, admin_client) -> None:  # type: ignore[no-untyped-def]
    """What an admin would change on a new instance: two custom fields, a picklist value,
    a relabelled value, a stricter record rule, a setting and a validation rule."""
    define_field(admin_client, name="wechat_id", kind="text", label_zh="微信号", unique="y")
    define_field(
        admin_client,
        name="grade",
        kind="choice",
        label_zh="客户等级",
        label_en="Grade",
        choices="A|A 级\nB|B 级",
        searchable="y",
    )
    with app.app_context():
        from crm_core.lowcode.picklists import Picklist, PicklistValue
        from crm_core.settings.models import Setting

        source = session().scalar(select(Picklist).where(Picklist.name == "customer_source"))
        session().add(
            PicklistValue(picklist_id=source.id, value="抖音", label_zh="抖音", position=75)
        )
        expo = session().scalar(select(PicklistValue).where(PicklistValue.value == "展会"))
        expo.label_zh = "展会/会议"
        rep = app.appbuilder.sm.find_role("Sales Rep")
        rule = session().scalar(
            select(RecordRule).where(RecordRule.role_id == rep.id, RecordRule.model == "*")
        )
        rule.pool = False
        session().add(Setting(key="pool.reclaim_days", value=45, plugin="core"))
        session().add(
            ValidationRule(
                model="Customer",
                name="制造业客户须填信用额度",
                conditions=[{"field": "industry", "op": "eq", "value": "制造业"}],
                target="credit_limit",
                check="required",
                message_zh="制造业客户请填写信用额度",
            )
        )
        session().commit()


@pytest.fixture
def restore_rep_rule(app):  # type: ignore[no-untyped-def]
    """Record rules outlive a test (see KEEP_TABLES): put back the one :func:`customise` changes."""
    yield
    with app.app_context():
        rep = app.appbuilder.sm.find_role("Sales Rep")
        rule = session().scalar(
            select(RecordRule).where(RecordRule.role_id == rep.id, RecordRule.model == "*")
        )
        rule.pool = True
        session().commit()


@pytest.mark.usefixtures("restore_rep_rule")
def test_export_diff_and_import_on_one_instance(app, admin_client, tmp_path):
    customise(app, admin_client)
    exported = crm(app, "config", "export")
    assert exported.exit_code == 0, exported.output
    data = yaml.safe_load(exported.stdout)
    assert data["custom_fields"]["Customer"]["grade"]["label_zh"] == "客户等级"
    assert "微信号" in exported.stdout  # readable: Chinese as written
    sources = [v["value"] for v in data["picklists"]["customer_source"]["values"]]
    assert "抖音" in sources
    assert data["record_rules"]["Sales Rep"]["*"] == {
        "read": "own",
        "write": "own",
        "pool": False,
    }
    assert data["settings"] == {"pool.reclaim_days": 45}

    data["custom_fields"]["Customer"]["grade"]["label_zh"] = "客户级别"
    data["custom_fields"]["Customer"]["budget"] = {"kind": "money", "label_zh": "预算"}
    bundle = tmp_path / "crm.yaml"
    bundle.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    diff = crm(app, "config", "diff", str(bundle))
    assert diff.exit_code == 0, diff.output
    assert "custom_fields.Customer.grade: label_zh: '客户等级' → '客户级别'" in diff.stdout
    assert "custom_fields.Customer.budget: added" in diff.stdout

    dry = crm(app, "config", "import", "--dry-run", str(bundle))
    assert dry.exit_code == 0 and "2 entries would change" in dry.stdout
    with app.app_context():
        assert (
            session().scalar(select(FieldDefinition).where(FieldDefinition.name == "budget"))
            is None
        )
    done = crm(app, "config", "import", str(bundle))
    assert done.exit_code == 0 and "2 entries changed" in done.stdout, done.output
    again = crm(app, "config", "diff", str(bundle))
    assert "no changes" in again.stdout
    form = admin_client.get("/customers/add").get_data(as_text=True)
    assert "客户级别" in form and "预算" in form  # live at once


@pytest.mark.usefixtures("restore_rep_rule")
def test_a_bad_bundle_changes_nothing_and_names_every_problem(app, admin_client, tmp_path):
    customise(app, admin_client)
    data = yaml.safe_load(crm(app, "config", "export").stdout)
    data["custom_fields"]["Customer"]["grade"]["label_zh"] = "改了"
    data["custom_fields"]["Customer"]["age"] = {"kind": "years", "label_zh": "年龄"}
    data["custom_fields"]["Nothing"] = {"x": {"kind": "text", "label_zh": "x"}}
    data["roles"]["Sales Rep"].append(["can_fly", "CustomerView"])
    data["record_rules"]["Sales Rep"]["*"]["read"] = "everything"
    bundle = tmp_path / "bad.yaml"
    bundle.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    result = crm(app, "config", "import", str(bundle))
    assert result.exit_code != 0
    for problem in (
        "custom_fields.Customer.age: unknown kind 'years'",
        "custom_fields.Nothing: no such record type takes custom fields",
        "roles.Sales Rep: no permission can_fly on CustomerView here",
        "record_rules.Sales Rep.*: read and write must be one of",
    ):
        assert problem in result.output, result.output
    with app.app_context():
        grade = session().scalar(select(FieldDefinition).where(FieldDefinition.name == "grade"))
        assert grade.label_zh == "客户等级"  # the good entries were not applied either
    not_yaml = tmp_path / "notes.yaml"
    not_yaml.write_text("just: [some, notes]\n", encoding="utf-8")
    refused = crm(app, "config", "import", str(not_yaml))
    assert refused.exit_code != 0 and "not a configuration bundle" in refused.output


def _fresh_instance(backend: str, tmp_path: Path) -> tuple[Flask, str]:
    if not reachable(backend):
        if os.environ.get("CRM_TEST_REQUIRE_ALL") == "1":
            pytest.fail(f"{backend} is not reachable and CRM_TEST_REQUIRE_ALL=1")
        pytest.skip(f"{backend} is not reachable")
    tmp_path.mkdir(parents=True, exist_ok=True)
    url = backend_url(backend, f"crm_bundle_{backend}_{os.getpid()}", tmp_path)
    app = make_test_app(url)
    with app.app_context():
        upgrade_all()
        for role, username in ROLE_USERS.items():
            ensure_user(username, PASSWORD, f"{username}@example.cn", role, first=username)
    return app, url


@pytest.mark.parametrize("target", ["postgresql", "mysql"])
def test_a_bundle_from_sqlite_makes_another_backend_behave_the_same(target, tmp_path):
    source, source_url = _fresh_instance("sqlite", tmp_path / "source")
    copy, copy_url = _fresh_instance(target, tmp_path / "target")
    try:
        customise(source, login_client(source, "Admin"))
        bundle = tmp_path / "crm.yaml"
        assert crm(source, "config", "export", "-o", str(bundle)).exit_code == 0
        imported = crm(copy, "config", "import", str(bundle))
        assert imported.exit_code == 0, imported.output

        # The same configuration, read back from the second database ...
        assert crm(copy, "config", "export").stdout == bundle.read_text(encoding="utf-8")
        # ... and the same behaviour.
        for app in (source, copy):
            admin = login_client(app, "Admin")
            wrong = admin.post(CUSTOMERS, json={"name": "甲", "custom": {"grade": "Z"}})
            assert wrong.get_json()["message"] == {"custom.grade": ["不是可选值之一：Z"]}
            made = admin.post(
                CUSTOMERS,
                json={"name": "乙", "source": "抖音", "custom": {"grade": "A", "wechat_id": "w1"}},
            )
            assert made.status_code == 201, made.get_json()
            taken = admin.post(CUSTOMERS, json={"name": "丙", "custom": {"wechat_id": "w1"}})
            assert taken.status_code == 422
            ruled = admin.post(CUSTOMERS, json={"name": "戊", "industry": "制造业"})
            assert ruled.get_json()["message"] == {"credit_limit": ["制造业客户请填写信用额度"]}
            rep = login_client(app, "Sales Rep")
            pooled = admin.post(CUSTOMERS, json={"name": "丁", "owner_id": None})
            assert pooled.status_code == 201
            listed = rep.get(CUSTOMERS).get_json()["result"]
            assert listed == []  # reps do not see the pool (pool: false), on both
    finally:
        for app, url in ((source, source_url), (copy, copy_url)):
            with app.app_context():
                app.extensions["crm_db"].engine.dispose()
            drop(url)


def test_roles_keep_permissions_on_screens_the_bundle_does_not_know(app, tmp_path):
    data = yaml.safe_load(crm(app, "config", "export").stdout)
    for role, permissions in data["roles"].items():  # as if exported where tags do not exist
        data["roles"][role] = [p for p in permissions if p[1] not in ("TagView", "TagApi")]
    data["roles"]["Sales Rep"].remove(["can_edit", "CustomerView"])
    bundle = tmp_path / "roles.yaml"
    bundle.write_text(yaml.safe_dump({"crm_config": 1, "roles": data["roles"]}), encoding="utf-8")
    try:
        done = crm(app, "config", "import", str(bundle))
        assert done.exit_code == 0, done.output
        assert "roles.Sales Rep: 0 permissions added, 1 removed" in done.stdout
        with app.app_context():
            rep = app.appbuilder.sm.find_role("Sales Rep")
            held = {(pv.permission.name, pv.view_menu.name) for pv in rep.permissions}
            assert ("can_edit", "CustomerView") not in held
            assert ("can_list", "TagView") in held  # a screen the bundle does not name: kept
    finally:
        with app.app_context():
            sm = app.appbuilder.sm
            sm.add_permission_role(
                sm.find_role("Sales Rep"), sm.find_permission_view_menu("can_edit", "CustomerView")
            )
