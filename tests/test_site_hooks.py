"""The shipped example of a site-local hook works as its docstring says."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from crm_core.cli.db import upgrade_all
from crm_core.cli.users import ensure_user
from crm_core.customers.models import Customer, Tag
from crm_core.db import session
from crm_core.testing.databases import backend_url
from crm_core.testing.plugin import login_client, make_test_app

EXAMPLE = Path(__file__).resolve().parents[1] / "hooks" / "_example_vip_guard.py"


def test_example_vip_guard_vetoes_archiving_a_key_account(crm_backend, tmp_path):
    hooks = tmp_path / "hooks"
    hooks.mkdir()
    shutil.copy(EXAMPLE, hooks / "vip_guard.py")
    url = backend_url(crm_backend, f"crm_hooks_{os.getpid()}", tmp_path)
    app = make_test_app(url, CRM_HOOKS_DIR=str(hooks), CRM_PLUGINS="hooks_vip_guard")
    with app.app_context():
        assert app.extensions["crm"].state_of("hooks_vip_guard") == "enabled"
        upgrade_all()
        ensure_user("t_admin", "Test-pass-1", "a@example.cn", "Admin")
        key = Customer(name="上海华东精密机械有限公司", tags=[Tag(name="重点客户")])
        plain = Customer(name="苏州相城联合贸易有限公司")
        session().add_all([key, plain])
        session().commit()
        key_id, plain_id = key.id, plain.id
    client = login_client(app, "t_admin")
    refused = client.delete(f"/api/v1/customer/{key_id}")
    assert refused.status_code == 422
    assert "重点客户不能归档" in refused.get_json()["message"]["_schema"][0]
    assert client.delete(f"/api/v1/customer/{plain_id}").status_code == 200
    with app.app_context():
        assert session().get(Customer, key_id).active is True
        assert session().get(Customer, plain_id).active is False
        app.extensions["crm_db"].engine.dispose()
