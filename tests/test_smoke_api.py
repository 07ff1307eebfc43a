"""Customers through the REST API: writes that succeed, and bad input that names its field."""

from crm_core.customers.models import Customer
from crm_core.db import session
from crm_core.testing.plugin import user_id


def test_create_customer_normalises_phone_and_sets_owner(app, rep_client):
    response = rep_client.post(
        "/api/v1/customer/", json={"name": "上海华东精密机械有限公司", "phone": "138 1234 5678"}
    )
    assert response.status_code == 201, response.get_json()
    result = response.get_json()["result"]
    assert result["phone"] == "138****5678"  # a rep reads phone numbers masked
    assert result["owner_id"] == user_id(app, "Sales Rep")
    with app.app_context():
        assert session().get(Customer, response.get_json()["id"]).phone == "+8613812345678"
    assert result["code"].startswith("C")


def test_duplicate_code_is_409_naming_code(app, rep_client):
    first = rep_client.post("/api/v1/customer/", json={"name": "甲公司", "code": "C-1"})
    assert first.status_code == 201
    second = rep_client.post("/api/v1/customer/", json={"name": "乙公司", "code": "c-1"})
    assert second.status_code == 409
    body = second.get_json()
    assert list(body["message"]) == ["code"]
    assert "SELECT" not in second.get_data(as_text=True).upper()


def test_invalid_phone_unknown_owner_and_bad_json(app, rep_client):
    phone = rep_client.post("/api/v1/customer/", json={"name": "丙", "phone": "12345"})
    assert phone.status_code == 422 and "phone" in phone.get_json()["message"]
    owner = rep_client.post("/api/v1/customer/", json={"name": "丁", "owner_id": 999999})
    assert owner.status_code == 422 and "owner_id" in owner.get_json()["message"]
    bad = rep_client.post("/api/v1/customer/", data="{not json", content_type="application/json")
    assert bad.status_code == 400 and "body" in bad.get_json()["message"]


def test_settings_api_reads_and_validates(app, admin_client):
    listing = admin_client.get("/api/v1/setting/").get_json()["result"]
    reclaim = next(s for s in listing if s["key"] == "pool.reclaim_days")
    assert reclaim["value"] == 30 and reclaim["type"] == "int"
    bad = admin_client.put("/api/v1/setting/pool.reclaim_days", json={"value": "很多"})
    assert bad.status_code == 422 and "value" in bad.get_json()["message"]
    ok = admin_client.put("/api/v1/setting/pool.reclaim_days", json={"value": "45"})
    assert ok.status_code == 200 and ok.get_json()["result"]["value"] == 45
    assert admin_client.put("/api/v1/setting/nope", json={"value": 1}).status_code == 404


def test_team_and_profile_api(app, admin_client):
    parent = admin_client.post("/api/v1/team/", json={"name": "销售部"}).get_json()["id"]
    child = admin_client.post("/api/v1/team/", json={"name": "华东区", "parent_id": parent})
    assert child.status_code == 201
    shown = admin_client.get(f"/api/v1/team/{child.get_json()['id']}").get_json()["result"]
    assert shown["path"] == f"/{parent}/{child.get_json()['id']}/"
    profile = admin_client.post(
        "/api/v1/userprofile/",
        json={"user_id": user_id(app, "Sales Rep"), "team_id": parent, "phone": "13800001111"},
    )
    assert profile.status_code == 201, profile.get_json()
    again = admin_client.post("/api/v1/userprofile/", json={"user_id": user_id(app, "Sales Rep")})
    assert again.status_code == 409 and "user_id" in again.get_json()["message"]


def test_mariadb_sessions_see_committed_changes(app, crm_backend):
    """Every backend reads committed data (MariaDB's default would be REPEATABLE READ)."""
    from crm_core.db import session

    with app.app_context():
        level = session().connection().get_isolation_level()
    expected = {"sqlite": "SERIALIZABLE", "postgresql": "READ COMMITTED"}
    assert level == expected.get(crm_backend, "READ COMMITTED")


def test_numbers_no_column_can_hold_are_404_and_422(app, admin_client):
    huge = 10**20
    assert admin_client.get(f"/api/v1/customer/{huge}").status_code == 404
    assert admin_client.put(f"/api/v1/customer/{huge}", json={"city": "上海市"}).status_code == 404
    answer = admin_client.post("/api/v1/contact/", json={"name": "王磊", "customer_id": huge})
    assert answer.status_code == 422
    assert list(answer.get_json()["message"]) == ["customer_id"]


def test_text_with_a_nul_character_is_422_on_every_database(admin_client):
    answer = admin_client.post("/api/v1/customer/", json={"name": "上海\x00公司"})
    assert answer.status_code == 422
    assert list(answer.get_json()["message"]) == ["name"]
    form = admin_client.post(
        "/customers/add", data={"name": "杭州\x00公司", "kind": "company"}, follow_redirects=True
    ).get_data(as_text=True)
    assert "Traceback" not in form and "psycopg2" not in form and "SQL" not in form


def test_a_malformed_rison_number_is_a_400(rep_client):
    answer = rep_client.get("/api/v1/customer/?q=1.4416339212642914e")
    assert answer.status_code == 400
    assert "Not a valid rison" in answer.get_json()["message"]
