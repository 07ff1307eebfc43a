"""Customer screens: list, search, add, edit, archive and the 360° page."""

from __future__ import annotations

from helpers import add_customer
from sqlalchemy import select

from crm_core.activities.models import Activity
from crm_core.customers.models import Contact, Customer
from crm_core.db import session
from crm_core.testing.plugin import user_id


def _add(client, **form):  # type: ignore[no-untyped-def]
    data = {"name": "", "kind": "company", "code": "", **form}
    return client.post("/customers/add", data=data, follow_redirects=True)


def test_add_edit_and_search_customer(app, rep_client):
    response = _add(
        rep_client, name="深圳市前海云图科技有限公司", phone="0755-86001234", city="深圳市"
    )
    assert response.status_code == 200
    with app.app_context():
        customer = session().scalar(select(Customer).where(Customer.name.like("深圳市前海%")))
        assert customer.phone == "+8675586001234"
        assert customer.owner_id == user_id(app, "Sales Rep")
        pk = customer.id
    edit = rep_client.post(
        f"/customers/edit/{pk}",
        data={
            "name": "深圳市前海云图科技有限公司",
            "kind": "company",
            "code": customer.code,
            "phone": "0755-86001234",
            "city": "广州市",
        },
        follow_redirects=True,
    )
    assert edit.status_code == 200
    with app.app_context():
        assert session().get(Customer, pk).city == "广州市"
        assert session().get(Customer, pk).version == 2
    found = rep_client.get("/customers/list/?_flt_2_name=深圳市前海").get_data(as_text=True)
    assert "深圳市前海云图科技有限公司" in found


def test_invalid_phone_shows_field_error_and_keeps_input(app, rep_client):
    response = _add(rep_client, name="北京朝阳金桥投资有限公司", phone="12345")
    html = response.get_data(as_text=True)
    assert response.status_code == 200
    assert "12345" in html  # what the user typed is still in the form
    assert "北京朝阳金桥投资有限公司" in html
    with app.app_context():
        assert session().scalar(select(Customer).where(Customer.name.like("北京朝阳%"))) is None


def test_duplicate_code_in_form_is_refused_without_sql(app, rep_client):
    _add(rep_client, name="甲", code="DUP-1")
    html = _add(rep_client, name="乙", code="DUP-1").get_data(as_text=True)
    assert "INSERT" not in html.upper() and "INTEGRITY" not in html.upper()
    with app.app_context():
        names = session().scalars(select(Customer.name).where(Customer.code == "DUP-1")).all()
        assert names == ["甲"]


def test_archive_hides_customer_from_list_and_keeps_row(app, admin_client):
    pk = add_customer(app, name="天津西青瑞丰模具有限公司", code="ARC-1")
    assert "ARC-1" in admin_client.get("/customers/list/").get_data(as_text=True)
    admin_client.post("/customers/action_post", data={"action": "archive", "rowid": [pk]})
    assert "ARC-1" not in admin_client.get("/customers/list/").get_data(as_text=True)
    with app.app_context():
        assert session().get(Customer, pk).active is False


def test_360_page_shows_contacts_and_merged_timeline(app, rep_client):
    rep = user_id(app, "Sales Rep")
    with app.app_context():
        customer = Customer(name="杭州滨江智联数据有限公司", owner_id=rep, phone="13812345678")
        session().add(customer)
        session().flush()
        session().add(
            Contact(customer_id=customer.id, name="王芳", mobile="13912345678", title="采购经理")
        )
        session().add(
            Activity(
                kind="visit", subject="上门拜访采购经理", customer_id=customer.id, owner_id=rep
            )
        )
        session().commit()
        pk = customer.id
    html = rep_client.get(f"/customer/{pk}").get_data(as_text=True)
    assert "杭州滨江智联数据有限公司" in html
    assert "138****5678" in html and "138 1234 5678" not in html  # masked for a rep
    assert f"/sensitive/Customer/{pk}/phone" in html  # with a link to reveal it
    assert "王芳" in html and "139****5678" in html
    assert "上门拜访采购经理" in html  # the follow-up is on the timeline
    with app.app_context():
        assert session().get(Customer, pk).last_activity_at is not None


def test_missing_customer_page_is_404(app, rep_client):
    assert rep_client.get("/customer/987654").status_code == 404
    assert rep_client.get("/api/v1/customer/987654").status_code == 404


def test_read_only_role_cannot_add(app, login):
    reader = login("Read-only")
    assert reader.get("/customers/list/").status_code == 200
    response = reader.post("/api/v1/customer/", json={"name": "只读"})
    assert response.status_code in (401, 403)


def test_menu_follows_permissions(app, admin_client, rep_client):
    assert "/modules/" in admin_client.get("/").get_data(as_text=True)
    rep_home = rep_client.get("/").get_data(as_text=True)
    assert "/customers/list/" in rep_home and "/modules/" not in rep_home
    assert rep_client.get("/modules/").status_code in (302, 403)


def test_delete_on_the_screen_archives(app, admin_client):
    pk = add_customer(app, name="宁波北仑东方物流有限公司", code="DEL-1")
    list_html = admin_client.get("/customers/list/").get_data(as_text=True)
    assert f'id="btn-delete-/customers/delete/{pk}"' in list_html
    assert f"execute_single_delete('/customers/delete/{pk}'" in list_html  # the button works
    admin_client.post(f"/customers/delete/{pk}")
    with app.app_context():
        assert session().get(Customer, pk).active is False  # kept, archived
    assert "DEL-1" not in admin_client.get("/customers/list/").get_data(as_text=True)


def test_empty_values_show_as_blank_cells_not_none(app, admin_client):
    from helpers import add_customer

    add_customer(app, name="芜湖鸠江空白字段有限公司")  # no city, industry, phone
    html = admin_client.get("/customers/list/").get_data(as_text=True)
    assert "芜湖鸠江空白字段有限公司" in html
    assert ">None<" not in html
