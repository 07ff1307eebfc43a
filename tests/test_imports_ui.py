"""The import screens, as a rep uses them: upload, mapping, check, import, refused rows."""

from __future__ import annotations

import csv
import io
import re

import pytest
from sqlalchemy import func, select

from crm_core.customers.models import Customer
from crm_core.db import session
from crm_core.testing.plugin import login_client

HEADER = ["客户名称", "联系电话", "电子邮箱", "所在城市", "行业", "备注"]
ROWS = [
    ["宁波港口物流有限公司", "13805740001", "ops@nbport.cn", "宁波", "物流", ""],
    ["温州鞋业有限公司", "0577-88881234", "", "温州", "制造业", "老客户"],
    ["", "13805740003", "", "宁波", "物流", "没有名称"],
    ["台州模具有限公司", "12345", "", "台州", "制造业", ""],
]


@pytest.fixture
def inline(app):  # type: ignore[no-untyped-def]
    """Imports run before the page answers, so the test reads their outcome at once."""
    app.config["CRM_IMPORT_INLINE"] = True
    yield
    app.config["CRM_IMPORT_INLINE"] = False


def _gbk_file() -> io.BytesIO:
    text = io.StringIO()
    writer = csv.writer(text)
    writer.writerow(HEADER)
    writer.writerows(ROWS)
    return io.BytesIO(text.getvalue().encode("gbk"))


def _count(app) -> int:  # type: ignore[no-untyped-def]
    with app.app_context():
        return session().scalar(select(func.count()).select_from(Customer))


def test_a_rep_uploads_checks_and_imports_a_gbk_file(app, inline):
    rep = login_client(app, "Sales Rep")
    page = rep.get("/imports/new")
    assert page.status_code == 200
    assert "客户" in page.get_data(as_text=True)

    uploaded = rep.post(
        "/imports/new",
        data={"model": "customer", "file": (_gbk_file(), "老系统客户.csv")},
        content_type="multipart/form-data",
    )
    assert uploaded.status_code == 302
    mapping_url = uploaded.headers["Location"]
    job_id = int(re.search(r"/imports/(\d+)/mapping", mapping_url).group(1))
    mapping = rep.get(mapping_url).get_data(as_text=True)
    # The Chinese headers found their fields; the notes column too.
    for position, field in enumerate(["name", "phone", "email", "city", "industry", "notes"]):
        select_html = re.search(rf'<select[^>]*name="column_{position}".*?</select>', mapping, re.S)
        assert select_html and f'value="{field}" selected' in select_html.group(0), field
    assert "宁波港口物流有限公司" in mapping  # sample rows help the user decide

    form = {
        f"column_{i}": f
        for i, f in enumerate(["name", "phone", "email", "city", "industry", "notes"])
    }
    saved = rep.post(mapping_url, data={**form, "mode": "upsert", "key_field": "phone"})
    assert saved.status_code == 302

    checked = rep.post(f"/imports/{job_id}/check", follow_redirects=True).get_data(as_text=True)
    assert "此项为必填项" in checked  # row 4 has no name
    assert "12345" in checked  # row 5's phone
    assert _count(app) == 0

    report = rep.get(f"/imports/{job_id}/report.csv?check=1")
    lines = list(csv.reader(io.StringIO(report.get_data(as_text=True).lstrip("\ufeff"))))
    assert [line[-2] for line in lines[1:]] == ["4", "5"]

    rep.post(f"/imports/{job_id}/start")
    progress = rep.get(f"/imports/{job_id}/progress").get_json()
    assert progress["status"] == "done"
    assert progress["figures"]["created"] == 2 and progress["figures"]["failed"] == 2
    with app.app_context():
        names = session().scalars(select(Customer.name).order_by(Customer.name)).all()
        owners = set(session().scalars(select(Customer.owner_id)))
    assert names == ["宁波港口物流有限公司", "温州鞋业有限公司"]
    assert len(owners) == 1 and None not in owners  # the rep's own customers

    listing = rep.get("/imports/").get_data(as_text=True)
    assert "老系统客户.csv" in listing and "已完成" in listing


def test_an_import_of_someone_else_is_not_found_and_read_only_users_cannot_import(app, inline):
    rep = login_client(app, "Sales Rep")
    uploaded = rep.post(
        "/imports/new",
        data={"model": "customer", "file": (_gbk_file(), "a.csv")},
        content_type="multipart/form-data",
    )
    job_url = uploaded.headers["Location"].rsplit("/mapping", 1)[0]
    manager = login_client(app, "Sales Manager")
    assert manager.get(job_url).status_code == 404
    reader = login_client(app, "Read-only")
    assert reader.get("/imports/new").status_code in (302, 403)


def test_a_file_that_is_not_a_table_is_refused_by_name(app, inline):
    admin = login_client(app, "Admin")
    answer = admin.post(
        "/imports/new",
        data={"model": "customer", "file": (io.BytesIO(b"%PDF-1.4"), "contract.pdf")},
        content_type="multipart/form-data",
    )
    assert answer.status_code == 200
    assert "contract.pdf" in answer.get_data(as_text=True)
    assert "请导入 .csv 或 .xlsx 文件" in answer.get_data(as_text=True)
