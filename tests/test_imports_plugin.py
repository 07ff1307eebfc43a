"""A plugin's model imports like a core one; a plugin's veto refuses the rows it vetoes."""

from __future__ import annotations

import io
import re

from helpers import define_field
from openpyxl import Workbook
from plugins_support import install_and_enable
from sqlalchemy import select

from crm_core.db import session


def _xlsx(rows: list[list[str]]) -> io.BytesIO:
    book = Workbook()
    for row in rows:
        book.active.append(row)
    data = io.BytesIO()
    book.save(data)
    data.seek(0)
    return data


def _import(admin, model: str, rows: list[list[str]], name: str):  # type: ignore[no-untyped-def]
    uploaded = admin.post(
        "/imports/new",
        data={"model": model, "file": (_xlsx(rows), name)},
        content_type="multipart/form-data",
    )
    assert uploaded.status_code == 302, uploaded.get_data(as_text=True)[-1500:]
    job_id = int(re.search(r"/imports/(\d+)/", uploaded.headers["Location"]).group(1))
    started = admin.post(f"/imports/{job_id}/start", follow_redirects=True)
    assert started.status_code == 200
    return admin.get(f"/imports/{job_id}/progress").get_json(), started.get_data(as_text=True)


def test_gadgets_import_with_their_custom_fields_and_customers(plugin_site):
    site = plugin_site("testplugin")
    app = site.start()
    app.config["CRM_IMPORT_INLINE"] = True
    install_and_enable(app, "testplugin")
    admin = site.client(app)
    define_field(
        admin,
        model="Gadget",
        name="colour",
        kind="choice",
        label_zh="颜色",
        choices="red|红色\nblue|蓝色",
    )
    made = admin.post("/api/v1/customer/", json={"name": "宁波港口物流有限公司", "code": "CNB01"})
    assert made.status_code == 201

    progress, _page = _import(
        admin,
        "gadget",
        [
            ["名称", "客户", "颜色"],
            ["吊臂", "CNB01", "红色"],
            ["叉车", "宁波港口物流有限公司", "blue"],
        ],
        "设备.xlsx",
    )
    from crm_core.data.imports.models import ImportProblem

    with app.app_context():
        problems = session().scalars(select(ImportProblem.message)).all()
    assert progress["figures"]["created"] == 2, problems
    from crm_testplugin.models import Gadget

    with app.app_context():
        gadgets = (
            session()
            .execute(select(Gadget.name, Gadget.customer_id, Gadget.custom).order_by(Gadget.name))
            .all()
        )
    customer_id = made.get_json()["id"]
    assert gadgets == [
        ("叉车", customer_id, {"colour": "blue"}),
        ("吊臂", customer_id, {"colour": "red"}),
    ]

    progress, page = _import(
        admin, "customer", [["客户名称"], ["VETO ME"], ["温州鞋业有限公司"]], "客户.xlsx"
    )
    assert (progress["figures"]["created"], progress["figures"]["failed"]) == (1, 1)
    assert "The test plugin refuses customers named VETO ME" in page
