"""The shared pool (公海): claim, release, and automatic return of idle customers."""

from __future__ import annotations

from datetime import timedelta

from helpers import add_customer
from sqlalchemy import select

from crm_core.activities.models import Activity
from crm_core.customers.models import Customer
from crm_core.customers.pool import RECLAIM_DAYS, reclaim_idle
from crm_core.db import session, utcnow
from crm_core.events.models import OutboxEvent
from crm_core.jobs.models import JobRun
from crm_core.jobs.runner import run_job
from crm_core.settings.store import set_setting
from crm_core.testing.plugin import user_id


def test_rep_claims_from_pool_and_releases(app, rep_client):
    pk = add_customer(app, name="苏州工业园区恒通电子有限公司", owner_id=None)
    claimed = rep_client.post(f"/api/v1/customer/{pk}/claim")
    assert claimed.status_code == 200
    assert claimed.get_json()["result"]["owner_id"] == user_id(app, "Sales Rep")
    again = rep_client.post(f"/api/v1/customer/{pk}/claim")
    assert again.status_code == 409 and "owner_id" in again.get_json()["message"]
    released = rep_client.post(f"/api/v1/customer/{pk}/release")
    assert released.status_code == 200 and released.get_json()["result"]["owner_id"] is None
    with app.app_context():
        types = session().scalars(select(OutboxEvent.type).order_by(OutboxEvent.id)).all()
    semantic = [t for t in types if t in ("customer.claimed", "customer.released")]
    assert semantic == ["customer.claimed", "customer.released"]
    assert "customer.updated" in types  # the generic change event comes too


def test_rep_cannot_release_someone_elses_customer(app, rep_client):
    pk = add_customer(app, name="杭州西湖博远科技有限公司", owner_id=user_id(app, "Admin"))
    response = rep_client.post(f"/api/v1/customer/{pk}/release")
    assert response.status_code == 404  # a rep does not see a colleague's customers at all
    with app.app_context():
        assert session().get(Customer, pk).owner_id == user_id(app, "Admin")


def test_claim_and_release_from_the_360_page(app, rep_client):
    pk = add_customer(app, name="广州天河鼎盛商贸有限公司", owner_id=None)
    page = rep_client.get(f"/customer/{pk}")
    assert page.status_code == 200 and f"/customer/{pk}/claim" in page.get_data(as_text=True)
    rep_client.post(f"/customer/{pk}/claim")
    page = rep_client.get(f"/customer/{pk}").get_data(as_text=True)
    assert f"/customer/{pk}/release" in page
    with app.app_context():
        assert session().get(Customer, pk).owner_id == user_id(app, "Sales Rep")


def test_idle_customers_return_to_pool_and_recent_ones_stay(app):
    rep = user_id(app, "Sales Rep")
    old = utcnow() - timedelta(days=45)
    idle = add_customer(app, name="天津滨海宏达物流有限公司", owner_id=rep, created_at=old)
    fresh = add_customer(app, name="北京海淀中科软件有限公司", owner_id=rep, created_at=old)
    with app.app_context():
        session().add(Activity(kind="call", subject="电话沟通", customer_id=fresh, owner_id=rep))
        set_setting(RECLAIM_DAYS, 30)
        session().commit()
        assert reclaim_idle() == {"reclaimed": 1, "kept": 0}
        assert session().get(Customer, idle).owner_id is None
        assert session().get(Customer, idle).pooled_at is not None
        assert session().get(Customer, fresh).owner_id == rep


def test_reclaim_job_run_is_logged(app):
    rep = user_id(app, "Sales Rep")
    add_customer(
        app,
        name="上海浦东精密机械有限公司",
        owner_id=rep,
        created_at=utcnow() - timedelta(days=400),
    )
    with app.app_context():
        run = run_job("core.pool_reclaim")
        assert run is not None and run.outcome == "ok"
        assert run.counts == {"reclaimed": 1, "kept": 0}
        logged = session().scalars(select(JobRun).where(JobRun.job_id == "core.pool_reclaim"))
        assert [r.outcome for r in logged] == ["ok"]
