"""Data quality: per-customer scores and the 客户信息准确率 KPI on a data set with known defects,
incremental recomputation, the page through record rules, and the Modules page's gate.

Expected figures are worked out here by hand from the formula in docs/data-quality.md.
"""

from __future__ import annotations

import os
import re
from datetime import timedelta
from fractions import Fraction
from html import unescape

from helpers import add_customer
from sqlalchemy import select, update

from crm_core.cli.db import upgrade_all
from crm_core.cli.users import ensure_user
from crm_core.customers.models import Contact, Customer
from crm_core.data.quality import DataQuality, recompute
from crm_core.db import session, utcnow
from crm_core.settings.store import set_setting
from crm_core.testing.databases import backend_url, drop
from crm_core.testing.plugin import login_client, make_test_app, user_id

VALID_USCC = "91110108551385082Q"
BAD_USCC = "91110108551385082A"  # wrong check character

#: The default weights, as documented (companies: 100 in all; persons: 75, no code, no contact).
WEIGHTS = {
    "name": 10,
    "phone_or_email": 20,
    "industry": 10,
    "source": 5,
    "region": 10,
    "address": 10,
    "owner": 10,
    "uscc": 15,
    "contact": 10,
}


def _full(**fields):  # type: ignore[no-untyped-def]
    """A company with every field that counts filled in."""
    return {
        "kind": "company",
        "industry": "制造业",
        "source": "展会",
        "province": "广东省",
        "city": "深圳市",
        "address": "南山区科技园科苑路 15 号",
        "uscc": VALID_USCC,
        **fields,
    }


def _seed(app):  # type: ignore[no-untyped-def]
    """Ten customers with known defects; returns their ids by letter.

    Rep's: A (perfect), B (no industry, no address), C (bad credit code), D (phone that is not
    a number, stored by legacy SQL; no e-mail, no contact), E (a person with little filled in,
    sharing F's phone), F (no credit code, the same phone typed with dashes, stored raw).
    Manager's: G and H (the same e-mail in other letter cases; H is a person), I (a name and
    an owner only), J (archived, with A's phone: archived customers count for nothing).
    """
    rep, manager = user_id(app, "Sales Rep"), user_id(app, "Sales Manager")
    people = {
        "A": _full(
            name="深圳市前海云图科技有限公司",
            phone="13812345678",
            email="info@yuntu.cn",
            owner_id=rep,
        ),
        "B": _full(name="上海华东精密机械有限公司", phone="13912345670", owner_id=rep),
        "C": _full(
            name="杭州西湖茶业有限公司",
            phone="13712345671",
            email="tea@xihu.cn",
            uscc=BAD_USCC,
            owner_id=rep,
        ),
        "D": _full(name="苏州相城联合贸易有限公司", owner_id=rep),
        "E": {
            "kind": "person",
            "name": "王芳",
            "phone": "13800138000",
            "province": "广东省",
            "owner_id": rep,
        },
        "F": _full(name="广州天河物流有限公司", email="ops@tianhe.cn", uscc=None, owner_id=rep),
        "G": _full(
            name="北京中关村信息技术有限公司",
            phone="13612345672",
            email="sales@huadong.cn",
            owner_id=manager,
        ),
        "H": {
            "kind": "person",
            "name": "李军",
            "email": "Sales@HuaDong.cn",
            "industry": "金融",
            "source": "官网",
            "province": "北京市",
            "city": "北京市",
            "address": "海淀区中关村大街 1 号",
            "owner_id": manager,
        },
        "I": {"kind": "company", "name": "成都高新建筑工程有限公司", "owner_id": manager},
        "J": _full(name="重庆渝中医疗器械有限公司", phone="13812345678", owner_id=manager),
    }
    del people["B"]["industry"], people["B"]["address"]
    ids = {letter: add_customer(app, **fields) for letter, fields in people.items()}
    with app.app_context():
        s = session()
        for letter in "ABCFG":  # companies with a contact
            s.add(Contact(customer_id=ids[letter], name=f"联系人{letter}", mobile="13512345678"))
        s.get(Customer, ids["J"]).active = False
        s.commit()
        # Legacy data the model's checks would refuse, written as old SQL scripts did.
        table = Customer.__table__
        s.execute(update(table).where(table.c.id == ids["D"]).values(phone="12345"))
        s.execute(update(table).where(table.c.id == ids["F"]).values(phone="138-0013-8000"))
        # Everything was entered an hour ago: only later changes are news to the job.
        earlier = utcnow() - timedelta(hours=1)
        s.execute(update(table).values(updated_at=earlier))
        s.execute(update(Contact.__table__).values(updated_at=earlier))
        s.commit()
    return ids


def _round(value: Fraction) -> int:
    """Halves up, as the documentation says."""
    return int((value + Fraction(1, 2)).__floor__())


def _expected(missing: list[str], company: bool, checks: int, passed: int, dup: bool) -> int:
    """A customer's score by the documented formula."""
    fields = [k for k in WEIGHTS if company or k not in ("uscc", "contact")]
    total = sum(WEIGHTS[k] for k in fields)
    present = total - sum(WEIGHTS[k] for k in missing)
    completeness = _round(Fraction(100 * present, total))
    validity = _round(Fraction(100 * passed, checks)) if checks else 100
    return _round(
        Fraction(5, 10) * completeness
        + Fraction(3, 10) * validity
        + Fraction(2, 10) * (0 if dup else 100)
    )


EXPECTED = {
    # letter: (missing fields, company, checks, passed, duplicate)
    "A": ([], True, 3, 3, False),
    "B": (["industry", "address"], True, 2, 2, False),
    "C": ([], True, 3, 2, False),
    "D": (["contact"], True, 2, 1, False),
    "E": (["industry", "source", "region", "address"], False, 1, 1, True),
    "F": (["uscc"], True, 2, 2, True),
    "G": ([], True, 3, 3, True),
    "H": ([], False, 1, 1, True),
    "I": (
        ["phone_or_email", "industry", "source", "region", "address", "uscc", "contact"],
        True,
        0,
        0,
        False,
    ),
}
#: The same scores, worked out on paper: e.g. E = round(0.5 × round(100 × 40/75) + 0.3 × 100
#: + 0.2 × 0) = round(26.5 + 30) = 57; C = round(0.5 × 100 + 0.3 × round(66.7) + 20) = 90.
ON_PAPER = {"A": 100, "B": 90, "C": 90, "D": 80, "E": 57, "F": 73, "G": 80, "H": 80, "I": 60}


def _scores(app, ids):  # type: ignore[no-untyped-def]
    with app.app_context():
        rows = session().scalars(select(DataQuality)).all()
        by_id = {row.customer_id: row for row in rows}
        return {letter: by_id.get(pk) for letter, pk in ids.items()}


def _kpi(page: str, name: str) -> str:
    found = re.search(rf'id="crm-dq-{name}">([^<]*)<', page)
    assert found, f"no {name} on the page"
    return unescape(found.group(1)).strip()


def test_scores_of_a_seeded_data_set_equal_the_hand_computed_ones(app, admin_client):
    ids = _seed(app)
    with app.app_context():
        counts = recompute()
    assert counts["scored"] == 9 and counts["removed"] == 0

    rows = _scores(app, ids)
    assert rows["J"] is None  # archived: not scored
    scores = {letter: rows[letter].score for letter in ON_PAPER}
    assert scores == ON_PAPER
    assert scores == {letter: _expected(*facts) for letter, facts in EXPECTED.items()}
    assert rows["D"].issues == ["missing_contact", "invalid_phone"]
    assert rows["C"].issues == ["invalid_uscc"]
    assert rows["E"].issues[-1] == "duplicate_phone" and rows["F"].duplicate
    assert rows["G"].issues == ["duplicate_email"] and rows["H"].issues == ["duplicate_email"]
    assert not rows["A"].duplicate  # J has the same phone but is archived

    page = admin_client.get("/data-quality/").get_data(as_text=True)
    # Overall: the mean of the nine scores; accuracy: A, B and I (no invalid value, no
    # duplicate); duplicate rate: E, F, G, H.
    assert _kpi(page, "score") == f"{sum(ON_PAPER.values()) / 9:.1f}" == "78.9"
    assert _kpi(page, "accuracy") == f"{100 * 3 / 9:.1f} %" == "33.3 %"
    assert _kpi(page, "duplicates") == f"{100 * 4 / 9:.1f} %" == "44.4 %"
    assert _kpi(page, "customers") == "9"
    # Industry is missing at B, E and I: 6 of 9; the credit code at F and I: 5 of 7 companies.
    fields = dict(re.findall(r'data-field="(\w+)">.*?crm-dq-percent">([^<]*)<', page, re.S))
    assert fields["industry"] == "66.7 %" and fields["uscc"] == "71.4 %"
    assert fields["name"] == "100.0 %"
    # Worst first, each with what to fix and a way to its page and form.
    worst = re.findall(r'<tr data-customer="(\d+)">', page)
    assert worst[:2] == [str(ids["E"]), str(ids["I"])] and str(ids["A"]) not in worst
    assert f'href="/customer/{ids["D"]}"' in page and f'href="/customers/edit/{ids["D"]}"' in page
    assert 'data-issue="invalid_phone"' in page


def test_recomputation_picks_up_an_edit_and_only_it(app, admin_client):
    ids = _seed(app)
    with app.app_context():
        recompute()
    before = _scores(app, ids)
    assert before["B"].score == 90

    edited = admin_client.put(
        f"/api/v1/customer/{ids['B']}",
        json={"industry": "制造业", "address": "浦东新区张江路 1 号"},
    )
    assert edited.status_code == 200, edited.get_json()
    with app.app_context():
        counts = recompute()
    assert counts["scored"] == 1
    after = _scores(app, ids)
    assert after["B"].score == 100 and after["B"].issues == []
    assert after["A"].computed_at == before["A"].computed_at  # untouched

    # A new contact of D: D is rescored, and nothing else.
    admin_client.post("/api/v1/contact/", json={"customer_id": ids["D"], "name": "赵磊"})
    with app.app_context():
        assert recompute()["scored"] == 1
    assert _scores(app, ids)["D"].issues == ["invalid_phone"]

    # Archiving F leaves E alone with that phone: F's row goes, E is no longer a duplicate.
    assert admin_client.delete(f"/api/v1/customer/{ids['F']}").status_code == 200
    with app.app_context():
        counts = recompute()
    assert counts["removed"] == 1
    rows = _scores(app, ids)
    assert rows["F"] is None and not rows["E"].duplicate
    assert rows["E"].score == _expected(*EXPECTED["E"][:4], False)


def test_the_recompute_button_is_for_administrators(app, admin_client, rep_client):
    ids = _seed(app)
    assert rep_client.post("/data-quality/recompute").status_code in (302, 403)
    assert "crm-dq-recompute" not in rep_client.get("/data-quality/").get_data(as_text=True)
    with app.app_context():
        assert session().scalar(select(DataQuality.score)) is None  # the rep computed nothing
    done = admin_client.post("/data-quality/recompute", follow_redirects=True)
    assert done.status_code == 200
    assert _kpi(done.get_data(as_text=True), "customers") == "9"
    assert _scores(app, ids)["I"].score == 60
    # A page position that is not one is refused by name, and the first page is shown.
    odd = admin_client.get("/data-quality/?after=x';--", follow_redirects=True)
    assert odd.status_code == 200 and "after:" in odd.get_data(as_text=True)
    assert _kpi(odd.get_data(as_text=True), "customers") == "9"


def test_a_rep_sees_the_figures_of_their_own_customers(app, rep_client):
    ids = _seed(app)
    with app.app_context():
        recompute()
    page = rep_client.get("/data-quality/").get_data(as_text=True)
    mine = [ON_PAPER[letter] for letter in "ABCDEF"]
    assert _kpi(page, "customers") == "6"
    assert _kpi(page, "score") == f"{sum(mine) / 6:.1f}" == "81.7"
    assert _kpi(page, "accuracy") == "33.3 %"  # A and B
    assert _kpi(page, "duplicates") == "33.3 %"  # E and F
    shown = set(re.findall(r'<tr data-customer="(\d+)">', page))
    assert shown == {str(ids[letter]) for letter in "BCDEF"}
    for name in ("北京中关村信息技术有限公司", "李军", "成都高新建筑工程有限公司"):
        assert name not in page


def test_the_page_is_in_chinese_with_the_kpi(app, admin_client):
    _seed(app)
    with app.app_context():
        recompute()
    page = admin_client.get("/data-quality/").get_data(as_text=True)
    assert "客户信息准确率" in page and "数据质量" in page and "重复率" in page
    assert "Customer information accuracy" not in page
    assert _kpi(page, "accuracy") == "33.3 %"
    assert "http://" not in page.replace("http://localhost", "")  # nothing from elsewhere


def test_the_weights_are_settings_and_a_change_rescores_everyone(app, admin_client):
    ids = _seed(app)
    with app.app_context():
        recompute()
    settings = admin_client.get("/settings/")
    assert settings.status_code == 200
    assert 'name="data_quality.weight.industry" value="10"' in settings.get_data(as_text=True)
    changed = admin_client.put("/api/v1/setting/data_quality.weight.industry", json={"value": 0})
    assert changed.status_code == 200, changed.get_json()
    refused = admin_client.put("/api/v1/setting/data_quality.weight.industry", json={"value": "x"})
    assert refused.status_code == 422 and "data_quality.weight.industry" in str(refused.get_json())
    with app.app_context():
        assert recompute()["scored"] == 9
    rows = _scores(app, ids)
    # B now lacks only its address: 80 of 90 -> round(88.9) = 89; score round(44.5 + 30 + 20).
    assert rows["B"].completeness == 89 and rows["B"].score == 95
    assert rows["B"].issues == ["missing_address"]  # a field weighted 0 is nothing to fix


def test_open_pairs_of_the_duplicate_review_count_as_duplicates(app):
    from sqlalchemy import MetaData, Table

    ids = _seed(app)
    with app.app_context():
        recompute()
        pairs = Table("crm_duplicate_pair", MetaData(), autoload_with=session().connection())
        pair = {
            "model": "Customer",
            "left_id": ids["A"],
            "right_id": ids["I"],
            "score": 90,
            "status": "open",
            "found_at": utcnow(),
        }
        session().execute(pairs.insert().values(**pair))
        session().commit()
        assert recompute()["rechecked"] == 2
    rows = _scores(app, ids)
    assert rows["A"].issues == ["duplicate_pair"] and rows["A"].score == 80
    assert rows["I"].duplicate
    with app.app_context():
        session().execute(pairs.update().values(status="distinct"))
        session().commit()
        recompute()
    rows = _scores(app, ids)
    assert not rows["A"].duplicate and rows["A"].score == 100


def test_the_modules_page_gates_analytics_on_accuracy(crm_backend, tmp_path):
    hooks = tmp_path / "hooks"
    hooks.mkdir()
    (hooks / "insight.py").write_text(
        "from crm_core import Manifest\n"
        'manifest = Manifest(name="hooks_insight", version="1.0", title="Insight", phase=2)\n'
    )
    url = backend_url(crm_backend, f"crm_dq_{os.getpid()}", tmp_path)
    app = make_test_app(url, CRM_HOOKS_DIR=str(hooks), CRM_PLUGINS="hooks_insight")
    try:
        with app.app_context():
            upgrade_all()
            ensure_user("t_admin", "Test-pass-1", "a@example.cn", "Admin")
            good = Customer(**_full(name="上海华东精密机械有限公司", phone="13812345678"))
            bad = Customer(**_full(name="杭州西湖茶业有限公司", uscc=BAD_USCC))
            session().add_all([good, bad])
            session().commit()
            recompute()
        admin = login_client(app, "t_admin")
        page = admin.get("/modules/").get_data(as_text=True)
        row = page[page.index('data-plugin="hooks_insight"') :]
        assert 'data-ready="no"' in row and "50.0" in row and 'href="/data-quality/"' in row

        enabled = admin.post("/modules/hooks_insight/enable", follow_redirects=True)
        text = enabled.get_data(as_text=True)
        assert "50.0" in text and "90" in text  # the warning, and the module is on anyway
        with app.app_context():
            assert app.extensions["crm"].state_of("hooks_insight") == "enabled"

        with app.app_context():
            bad = session().scalar(select(Customer).where(Customer.uscc == BAD_USCC))
            bad.uscc = VALID_USCC
            session().commit()
            recompute()
            set_setting("data_quality.readiness_threshold", 95)
            session().commit()
        page = admin.get("/modules/").get_data(as_text=True)
        row = page[page.index('data-plugin="hooks_insight"') :]
        assert 'data-ready="yes"' in row and "100.0" in row
    finally:
        with app.app_context():
            app.extensions["crm_db"].engine.dispose()
        drop(url)
