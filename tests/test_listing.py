"""Customer lists: keyset paging, FAB's rison ``q``, prefix search, deep pages, cheap counts,
and the HTML list with its filters, on every backend."""

from __future__ import annotations

from datetime import datetime, timedelta
from urllib.parse import quote

import prison
import pytest
from sqlalchemy import text

from crm_core.customers.models import Customer
from crm_core.db import session

# Few distinct names and timestamps, so every sort key has ties the id must break.
NAMES = [
    "上海华东精密机械有限公司",
    "北京恒信科技有限公司",
    "ACME Trading",
    "acme logistics",
    "50% 折扣店",
]
CITIES = ["上海", "北京", "杭州"]
BASE_TIME = datetime(2026, 1, 1, 9, 0, 0)


@pytest.fixture
def customers(app):  # type: ignore[no-untyped-def]
    """60 active customers (and 3 archived ones) with repeated names and update times."""
    app.extensions.pop("crm_listing_stats", None)  # table sizes cached by earlier tests
    with app.app_context():
        s = session()
        for i in range(63):
            s.add(
                Customer(
                    name=NAMES[i % len(NAMES)],
                    code=f"C{i:09d}",
                    phone=f"+86138{1000 + i % 7:04d}{i:04d}",
                    city=CITIES[i % len(CITIES)],
                    active=i < 60,
                )
            )
        s.commit()
        # Ties in the screen's default order too: three customers per timestamp.
        table = Customer.__table__
        for n, (id_,) in enumerate(s.query(Customer.id).order_by(Customer.id)):
            # Through the column's type, so SQLite stores the text form SQLAlchemy compares.
            when = BASE_TIME + timedelta(minutes=n // 3)
            s.execute(table.update().where(table.c.id == id_).values(updated_at=when))
        s.commit()
        _analyze(s)
    yield
    app.extensions.pop("crm_listing_stats", None)


def _analyze(s) -> None:  # type: ignore[no-untyped-def]
    """Fresh planner statistics, so the estimates the count falls back on see the rows."""
    dialect = s.get_bind().dialect.name
    if dialect == "postgresql":
        s.execute(text("ANALYZE crm_customer"))
    elif dialect == "mysql":
        s.execute(text("ANALYZE TABLE crm_customer"))
    else:
        s.execute(text("ANALYZE"))
    s.commit()


def _expected(app, *order, **where) -> list[int]:  # type: ignore[no-untyped-def]
    """Ids of active customers in the database's own order (collations differ per backend)."""
    with app.app_context():
        query = session().query(Customer.id).filter(Customer.active.is_(True))
        for column, value in where.items():
            query = query.filter(getattr(Customer, column) == value)
        return [row.id for row in query.order_by(*order)]


def _list(client, q: dict | None = None, **params):  # type: ignore[no-untyped-def]
    url = "/api/v1/customer/?"
    if q is not None:
        url += "q=" + quote(prison.dumps(q)) + "&"
    url += "&".join(f"{k}={quote(str(v))}" for k, v in params.items())
    response = client.get(url)
    assert response.status_code == 200, response.get_json()
    return response.get_json()


def _walk(client, q: dict, page_size: int = 7) -> list[int]:  # type: ignore[no-untyped-def]
    ids: list[int] = []
    body = _list(client, q, cursor="", page_size=page_size)
    pages = 1
    while True:
        assert len(body["result"]) <= page_size
        ids += body["ids"]
        if body["next_cursor"] is None:
            break
        body = _list(client, q, cursor=body["next_cursor"], page_size=page_size)
        pages += 1
        assert pages < 30, "the cursor does not advance"
    return ids


def test_keyset_pages_return_every_row_once_in_order(app, admin_client, customers):
    by_name = _walk(admin_client, {"order_column": "name", "order_direction": "asc"})
    assert by_name == _expected(app, Customer.name, Customer.id)
    assert len(set(by_name)) == 60

    newest = _walk(admin_client, {"order_column": "updated_at", "order_direction": "desc"})
    assert newest == _expected(app, Customer.updated_at.desc(), Customer.id.desc())

    by_id = _walk(admin_client, {}, page_size=25)
    assert by_id == _expected(app, Customer.id)


def test_keyset_pages_keep_filters(app, admin_client, customers):
    q = {
        "filters": [{"col": "city", "opr": "eq", "value": "杭州"}],
        "order_column": "code",
        "order_direction": "desc",
    }
    ids = _walk(admin_client, q, page_size=4)
    assert ids == _expected(app, Customer.code.desc(), Customer.id.desc(), city="杭州")
    assert len(ids) == 20


def test_bad_or_mismatched_cursor_is_400(admin_client, customers):
    first = _list(admin_client, {"order_column": "name", "order_direction": "asc"}, cursor="")
    cursor = first["next_cursor"]
    assert cursor
    other_order = admin_client.get(f"/api/v1/customer/?cursor={cursor}")
    assert other_order.status_code == 400
    assert admin_client.get("/api/v1/customer/?cursor=not-a-cursor").status_code == 400
    both = "/api/v1/customer/?cursor=&q=" + quote(prison.dumps({"page": 1}))
    assert admin_client.get(both).status_code == 400


def test_rison_q_filters_order_columns_and_pages_still_work(app, admin_client, customers):
    expected = _expected(app, Customer.name.desc(), Customer.id.desc(), city="北京")
    q = {
        "filters": [{"col": "city", "opr": "eq", "value": "北京"}],
        "order_column": "name",
        "order_direction": "desc",
        "columns": ["id", "name"],
    }
    pages = [_list(admin_client, {**q, "page": n, "page_size": 6}) for n in range(4)]
    assert [i for p in pages for i in p["ids"]] == expected
    assert pages[0]["count"] == 20 and pages[0]["count_is_estimate"] is False
    assert set(pages[0]["result"][0]) == {"id", "name"}
    assert pages[0]["next_cursor"] and pages[3]["next_cursor"] is None

    bad = admin_client.get("/api/v1/customer/?q=" + quote(prison.dumps({"order_column": "city"})))
    assert bad.status_code == 400
    not_allowed = {"filters": [{"col": "notes", "opr": "eq", "value": "x"}]}
    bad = admin_client.get("/api/v1/customer/?q=" + quote(prison.dumps(not_allowed)))
    assert bad.status_code == 400


def _search(client, column: str, typed: str, opr: str = "sw") -> list[int]:  # type: ignore[no-untyped-def]
    body = _list(
        client, {"filters": [{"col": column, "opr": opr, "value": typed}], "page_size": 100}
    )
    return sorted(body["ids"])


def test_prefix_search_by_name_code_and_phone(app, admin_client, customers):
    def ids_where(predicate) -> list[int]:  # type: ignore[no-untyped-def]
        with app.app_context():
            rows = session().query(Customer).filter(Customer.active.is_(True)).all()
            return sorted(c.id for c in rows if predicate(c))

    assert _search(admin_client, "name", "上海华东") == ids_where(
        lambda c: c.name.startswith("上海")
    )
    # Case-insensitive like FAB's ILIKE: "acme" finds "ACME Trading" and "acme logistics".
    acme = ids_where(lambda c: c.name.lower().startswith("acme"))
    assert len(acme) == 24
    assert _search(admin_client, "name", "acme") == acme
    assert _search(admin_client, "name", "ACME T") == ids_where(lambda c: c.name == "ACME Trading")
    # LIKE wildcards are literal.
    assert _search(admin_client, "name", "50%") == ids_where(lambda c: c.name.startswith("50%"))
    assert _search(admin_client, "name", "5_%") == []

    # Codes are stored upper-case; what the user types is upper-cased.
    assert _search(admin_client, "code", "c00000001") == ids_where(
        lambda c: c.code.startswith("C00000001")
    )
    # Phones are stored in E.164; "138 1003" means +861381003.
    assert _search(admin_client, "phone", "138 1003") == ids_where(
        lambda c: c.phone.startswith("+861381003")
    )
    assert _search(admin_client, "phone", "+86 1381006") == ids_where(
        lambda c: c.phone.startswith("+861381006")
    )
    assert _search(admin_client, "phone", "139") == []
    # Other operators are FAB's.
    assert _search(admin_client, "name", "有限公司", opr="ew") == ids_where(
        lambda c: c.name.endswith("有限公司")
    )


def test_prefix_search_with_like_where_ranges_would_be_wrong(
    app, admin_client, customers, monkeypatch
):
    """Under a linguistic collation (PostgreSQL en_US, MariaDB) prefixes are matched with
    LIKE instead of ranges; the same searches find the same rows."""
    from crm_core.web import search

    searches = [("name", "acme"), ("name", "上海"), ("code", "c00000001"), ("phone", "138 1005")]
    ranges = [_search(admin_client, column, typed) for column, typed in searches]
    monkeypatch.setattr(search, "binary_collation", lambda engine: False)
    like = [_search(admin_client, column, typed) for column, typed in searches]
    assert like == ranges
    assert [len(ids) for ids in like] == [24, 12, 10, 8]


def test_deep_pages_by_deferred_join_offset_and_anchors_agree(
    app, admin_client, customers, monkeypatch
):
    """Every way of reading a numbered page gives FAB's rows: the deferred join, plain OFFSET,
    and seeking from the anchors earlier pages left (in page order and jumping around)."""
    from crm_core.web import anchors

    expected = _expected(app, Customer.name, Customer.id)
    q = {"order_column": "name", "order_direction": "asc", "page_size": 7}
    monkeypatch.setitem(app.config, "CRM_LIST_DEFERRED_JOIN_OFFSET", 1)
    for strategy in ("deferred", "offset"):
        monkeypatch.setitem(app.config, "CRM_LIST_DEEP_PAGES", strategy)
        for order in (range(9), [5, 3, 6, 4, 8, 0, 7, 2, 1, 6]):
            with app.app_context():
                anchors.forget()
            for n in order:
                ids = _list(admin_client, {**q, "page": n})["ids"]
                assert ids == expected[n * 7 : n * 7 + 7], (strategy, n)


def test_jumps_from_stored_anchors_give_the_same_rows(app, admin_client, customers, monkeypatch):
    """After the ``core.list_anchors`` job, a jump to any page seeks from a stored anchor and
    shows exactly the rows OFFSET would, in both orders the customer API anchors; a user whose
    record rules narrow the list never gets another list's anchors."""
    from crm_core.testing.plugin import login_client, user_id
    from crm_core.web import anchors
    from crm_core.web.anchor_job import refresh_list_anchors
    from crm_core.web.anchor_store import ListAnchor

    monkeypatch.setitem(app.config, "CRM_LIST_DEFERRED_JOIN_OFFSET", 1)
    monkeypatch.setitem(app.config, "CRM_LIST_ANCHOR_STEP", 5)
    monkeypatch.setitem(app.config, "CRM_LIST_ANCHOR_MIN_ROWS", 0)
    admin = user_id(app, "Admin")
    with app.app_context():
        table = Customer.__table__
        session().execute(table.update().where(table.c.id % 2 == 0).values(owner_id=admin))
        session().commit()
        done = refresh_list_anchors()
        stored = session().query(ListAnchor).count()
    assert done["lists"] >= 2 and stored >= 2 * (60 // 5)
    for column, expected in (
        ("name", _expected(app, Customer.name, Customer.id)),
        ("id", _expected(app, Customer.id)),
    ):
        q = {"order_column": column, "order_direction": "asc", "page_size": 7}
        for n in (6, 2, 8, 1, 5):
            with app.app_context():
                anchors.forget()
            ids = _list(admin_client, {**q, "page": n})["ids"]
            assert ids == expected[n * 7 : n * 7 + 7], (column, n)
    # A rep sees only the pooled half: their pages are theirs, whatever the anchors say.
    rep = login_client(app, "Sales Rep")
    pooled = _expected(app, Customer.name, Customer.id, owner_id=None)
    assert 20 < len(pooled) < 40
    q = {"order_column": "name", "order_direction": "asc", "page_size": 7}
    for n in (2, 1, 3):
        with app.app_context():
            anchors.forget()
        assert _list(rep, {**q, "page": n})["ids"] == pooled[n * 7 : n * 7 + 7], n


def test_count_is_exact_when_cheap_and_flagged_when_estimated(
    app, admin_client, customers, monkeypatch
):
    small = _list(admin_client, {"page_size": 5})
    assert (small["count"], small["count_is_estimate"]) == (60, False)

    # Pretend the table is big: above the exact-count size, and the cap below the matches.
    monkeypatch.setitem(app.config, "CRM_LIST_EXACT_COUNT_MAX", 10)
    monkeypatch.setitem(app.config, "CRM_LIST_COUNT_CAP", 30)
    app.extensions.pop("crm_listing_stats", None)
    big = _list(admin_client, {"page_size": 5})
    assert big["count_is_estimate"] is True
    assert big["count"] > 30
    assert len(big["result"]) == 5
    few = _list(admin_client, {"filters": [{"col": "code", "opr": "sw", "value": "C00000001"}]})
    assert (few["count"], few["count_is_estimate"]) == (10, False)


def test_html_list_shows_rows_filters_orders_and_pages(app, admin_client, customers, monkeypatch):
    page = admin_client.get("/customers/list/")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    newest = _expected(app, Customer.updated_at.desc(), Customer.id.desc())
    with app.app_context():
        first = session().get(Customer, newest[0])
        archived = session().query(Customer).filter(Customer.active.is_(False)).first()
        assert first is not None and archived is not None
        assert first.code in html and archived.code not in html

    # FAB's search form: filter 0 of a text column is "starts with".
    shanghai = admin_client.get("/customers/list/?_flt_0_name=" + quote("上海")).get_data(
        as_text=True
    )
    assert "上海华东精密机械有限公司" in shanghai and "北京恒信科技有限公司" not in shanghai
    by_phone = admin_client.get("/customers/list/?_flt_0_phone=" + quote("138 1002"))
    with app.app_context():
        hits = session().query(Customer).filter(Customer.phone.like("+861381002%")).all()
    text_ = by_phone.get_data(as_text=True)
    assert all(c.code in text_ for c in hits if c.active)

    # Deep pages of a sorted list, through the deferred join.
    monkeypatch.setitem(app.config, "CRM_LIST_DEFERRED_JOIN_OFFSET", 1)
    by_code = _expected(app, Customer.code.desc(), Customer.id.desc())
    with app.app_context():
        codes = [session().get(Customer, i).code for i in by_code]  # type: ignore[union-attr]
    url = "/customers/list/?_oc_CustomerView=code&_od_CustomerView=desc&psize_CustomerView=10"
    third = admin_client.get(url + "&page_CustomerView=2").get_data(as_text=True)
    assert all(code in third for code in codes[20:30])
    assert not any(code in third for code in codes[:20] + codes[30:])


def test_a_hand_made_list_link_never_breaks_the_list(app, admin_client, crm_backend):
    """An unknown sort column or direction falls back to the list's order; a filter value
    that does not fit its field is named in Chinese and the list shown without it."""
    for query in ("_oc_CustomerView=nope&_od_CustomerView=asc", "_od_CustomerView=sideways"):
        page = admin_client.get(f"/customers/list/?{query}")
        assert page.status_code == 200, query
    shown = admin_client.get("/customers/list/?_flt_0_owner=99999999999999", follow_redirects=True)
    text = shown.get_data(as_text=True)
    assert shown.status_code == 200 and "Exception" not in text
    if crm_backend == "postgresql":  # the database refuses the number: named, not leaked
        assert "列表的筛选条件中有与字段不符的值（负责人）" in text
