"""``crm backup`` and ``crm restore``: a CRM backed up from SQLite comes back identical on every
backend, encrypted values stay ciphertext, and a target that is not empty or an archive that is
damaged is refused without changing anything."""

from __future__ import annotations

import json
import os
import re
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from pathlib import Path

import pytest
from flask import Flask
from helpers import define_field
from plugins_support import InProcessCrm
from sqlalchemy import func, inspect, select, text

from crm_core.activities.models import Activity
from crm_core.cli.db import upgrade_all
from crm_core.cli.users import ensure_user
from crm_core.customers.models import Contact, Customer, Tag
from crm_core.data.backup import snapshot, table_specs
from crm_core.data.backup_tables import read_rows
from crm_core.data.backup_values import TableDigest
from crm_core.db import session
from crm_core.lowcode.layouts import Layout
from crm_core.org.models import Team, UserProfile
from crm_core.plugins import lifecycle
from crm_core.security.keyring import new_key_line
from crm_core.settings.models import Setting
from crm_core.testing.databases import backend_url, drop
from crm_core.testing.plugin import PASSWORD, login_client, make_test_app

K1 = new_key_line("k1")
#: The plaintext of an encrypted custom field, which no part of an archive may hold.
SECRET = "Vault-note-5521 保密条款丁"
CUSTOMERS = "/api/v1/customer/"
FILE_BYTES = "合同扫描件 page 1\n".encode() * 50


def _start(url: str, files: Path, plugins: str = "testplugin", **config: object) -> Flask:
    return make_test_app(
        url,
        CRM_PLUGINS=plugins,
        CRM_ENCRYPTION_KEYS=K1,
        CRM_FILES_DIR=str(files),
        BABEL_DEFAULT_LOCALE="en",
        **config,
    )


def _close(app: Flask) -> None:
    with app.app_context():
        app.extensions["crm_db"].session.remove()
        app.extensions["crm_db"].engine.dispose()


def digests(app: Flask) -> dict[str, tuple[int, str]]:
    """Row count and content checksum of every table of the app's database, read there."""
    with app.app_context():
        engine = session().get_bind()
        with snapshot(engine) as conn:  # type: ignore[arg-type]
            specs, _skipped = table_specs(conn)
            found = {}
            for spec in specs:
                digest = TableDigest(spec.columns)
                for row in read_rows(conn, spec, batch=7):  # several batches per table
                    digest.add(row)
                found[spec.name] = (digest.count, digest.sha256)
        session().rollback()
        return found


def _fill(app: Flask) -> dict[str, int]:
    """Realistic content across many tables; returns ids the tests look at."""
    admin = login_client(app, "t_admin")
    define_field(admin, name="secret_note", kind="text", label_zh="保密备注", encrypted="y")
    define_field(admin, name="grade", kind="text", label_zh="等级")
    ids: dict[str, int] = {}
    for n, (name, note) in enumerate(
        [("青岛海湾化工有限公司", SECRET), ("烟台海港物流有限公司", None), ("Zeta Trading", None)]
    ):
        custom = {"grade": "AB"[n % 2]} | ({"secret_note": note} if note else {})
        body = {"name": name, "credit_limit": f"{12345 + n}.50", "custom": custom}
        answer = admin.post(CUSTOMERS, json=body)
        assert answer.status_code == 201, answer.get_json()
        ids.setdefault("secret_customer", answer.get_json()["id"])
    with app.app_context():
        s = session()
        first = s.get(Customer, ids["secret_customer"])
        child = Team(name="华东一组", path="")
        s.add(child)
        s.flush()
        parent = Team(name="华东大区", path="", region="华东")
        s.add(parent)
        s.flush()
        child.parent_id = parent.id  # a reference to a later row of the same table
        rep = app.appbuilder.sm.find_user(username="t_rep")  # type: ignore[attr-defined]
        s.add(UserProfile(user_id=rep.id, team_id=child.id, phone="13900001111", title="销售"))
        first.tags.append(Tag(name="重点客户", color="red"))
        contact = Contact(customer=first, name="王芳", mobile="13812345678", title="采购经理")
        s.add(contact)
        s.add(
            Activity(
                kind="visit",
                subject="上门拜访",
                body="带样品",
                customer=first,
                contact=contact,
                occurred_at=datetime(2026, 3, 1, 9, 30, 15, 123456),
                done=True,
            )
        )
        s.add(Layout(model="Customer", sections=[{"title": "基本", "fields": ["name"]}]))
        s.add(Setting(key="Zeta.note", value={"ratio": 1.0, "list": [1, "二"]}, plugin="core"))
        s.add(Setting(key="alpha.flag", value=True, plugin="core"))
        from crm_testplugin.models import Gadget

        s.add(Gadget(name="Widget-R", customer_id=first.id, custom={}))
        s.commit()
        ids["child_team"], ids["parent_team"] = child.id, parent.id
        ids["max_customer"] = int(s.scalar(select(func.max(Customer.id))) or 0)
    files = Path(app.config["CRM_FILES_DIR"])
    (files / "attachments" / "2026").mkdir(parents=True)
    (files / "attachments" / "2026" / "合同.pdf").write_bytes(FILE_BYTES)
    return ids


@dataclass
class Source:
    """A SQLite CRM with the test plugin, its archive and its tables' digests."""

    app: Flask
    archive: Path
    digests: dict[str, tuple[int, str]]
    ids: dict[str, int]


@pytest.fixture(scope="module")
def source(plugin_wheels: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Source]:
    work = tmp_path_factory.mktemp("backup_source")
    (work / "files").mkdir()
    app = _start(f"sqlite:///{work / 'source.db'}", work / "files")
    with app.app_context():
        upgrade_all()
        lifecycle.enable("testplugin")
        ensure_user("t_admin", PASSWORD, "t_admin@example.cn", "Admin", first="管理员")
        ensure_user("t_rep", PASSWORD, "t_rep@example.cn", "Sales Rep", first="王")
    ids = _fill(app)
    archive = work / "crm.zip"
    InProcessCrm(lambda: app)("backup", "-o", str(archive))
    yield Source(app, archive, digests(app), ids)
    _close(app)


@pytest.fixture
def target(crm_backend: str, tmp_path: Path) -> Iterator[Callable[..., tuple[InProcessCrm, str]]]:
    """``target(plugins=...)``: a new empty database on the backend and ``crm`` on it."""
    urls: list[str] = []
    apps: list[Flask] = []

    def make(plugins: str = "testplugin") -> tuple[InProcessCrm, str]:
        url = backend_url(crm_backend, f"crm_bk_{os.getpid()}_{len(urls)}", tmp_path)
        urls.append(url)
        files = tmp_path / f"files{len(urls)}"

        def start() -> Flask:
            apps.append(_start(url, files, plugins))
            return apps[-1]

        return InProcessCrm(start), url

    yield make
    for app in apps:
        _close(app)
    for url in urls:
        drop(url)


def inspect_tables(url: str) -> list[str]:
    app = make_test_app(url, CRM_PLUGINS="")
    try:
        with app.app_context():
            return sorted(inspect(session().get_bind()).get_table_names())
    finally:
        _close(app)


def test_a_sqlite_backup_restores_identically_on_every_backend(source, target):
    crm, _url = target()
    out = crm("restore", str(source.archive), "--yes")
    assert "every table matches" in out

    app = crm.make_app()
    restored = digests(app)
    assert restored == source.digests  # same tables, row counts and content checksums
    assert source.digests["crm_customer"][0] == 3
    assert source.digests["tp_gadget"][0] == 1
    assert source.digests["crm_audit_log"][0] >= 5 and source.digests["crm_outbox"][0] >= 5
    assert all(source.digests[t][0] for t in ("crm_team", "crm_layout", "crm_picklist_value"))

    with app.app_context():
        stored = (
            session()
            .execute(
                text("SELECT custom FROM crm_customer WHERE id = :id"),
                {"id": source.ids["secret_customer"]},
            )
            .scalar_one()
        )
        raw = stored if isinstance(stored, dict) else json.loads(stored)
        assert raw["secret_note"].startswith("enc:v1:k1:")  # still ciphertext in the database
        team = session().get(Team, source.ids["child_team"])
        assert team.parent_id == source.ids["parent_team"]
        session().rollback()
    restored_file = Path(app.config["CRM_FILES_DIR"]) / "attachments" / "2026" / "合同.pdf"
    assert restored_file.read_bytes() == FILE_BYTES

    admin = login_client(app, "t_admin")  # the restored user logs in with their password
    listing = admin.get("/customers/list/").get_data(as_text=True)
    assert "青岛海湾化工有限公司" in listing and "Zeta Trading" in listing
    shown = admin.get(f"{CUSTOMERS}{source.ids['secret_customer']}").get_json()["result"]
    assert shown["custom"] == {"secret_note": SECRET, "grade": "A"}
    assert Decimal(str(shown["credit_limit"])) == Decimal("12345.50")
    new = admin.post(CUSTOMERS, json={"name": "恢复后新建客户", "custom": {"secret_note": "x"}})
    assert new.status_code == 201, new.get_json()  # counters moved past the restored ids
    assert new.get_json()["id"] > source.ids["max_customer"]


def test_the_archive_holds_ciphertext_and_what_the_manifest_promises(source):
    with zipfile.ZipFile(source.archive) as archive:
        names = archive.namelist()
        manifest = json.loads(archive.read("manifest.json"))
        contents = b"".join(archive.read(name) for name in names)
        customers = archive.read("tables/crm_customer.jsonl").decode()
        config = archive.read("config.yaml").decode()
    for form in (SECRET, json.dumps(SECRET)[1:-1]):
        assert form.encode() not in contents
    assert "enc:v1:k1:" in customers
    assert "secret_note" in config and "crm_config" in config
    assert "files/attachments/2026/合同.pdf" in names
    assert manifest["source_dialect"] == "sqlite"
    assert set(manifest["lineages"]) == {"core", "testplugin"}
    assert manifest["plugins"]["testplugin"]["version"] == "1.0.0"
    tables = {t["name"]: t for t in manifest["tables"]}
    assert (tables["crm_customer"]["rows"], tables["crm_customer"]["sha256"]) == source.digests[
        "crm_customer"
    ]
    activity = json.loads(archive_line(source.archive, "crm_activity"))
    assert activity["occurred_at"] == "2026-03-01T09:30:15.123456"
    assert activity["done"] is True


def archive_line(path: Path, table: str) -> str:
    with zipfile.ZipFile(path) as archive:
        return archive.read(f"tables/{table}.jsonl").decode().splitlines()[0]


def test_restore_into_a_database_that_is_not_empty_is_refused_and_changes_nothing(source, target):
    crm, url = target()
    app = crm.make_app()
    with app.app_context():
        upgrade_all()
        session().add(Customer(name="已有客户"))
        session().commit()
    before = digests(app)
    result = crm.run("restore", str(source.archive), "--yes")
    assert result.exit_code != 0
    assert "not empty" in result.output
    assert digests(app) == before


def _damaged(archive: Path, folder: Path, edit: Callable[[str, bytes], bytes]) -> Path:
    copy = folder / "damaged.zip"
    with zipfile.ZipFile(archive) as src, zipfile.ZipFile(copy, "w") as out:
        for info in src.infolist():
            out.writestr(info.filename, edit(info.filename, src.read(info)))
    return copy


def test_a_damaged_archive_is_reported_and_nothing_is_restored(source, target, tmp_path):
    crm, url = target()

    def edit(name: str, data: bytes) -> bytes:
        if name == "tables/crm_customer.jsonl":
            return data.replace(b"Zeta Trading", b"Zeta Tradinq")
        return data

    result = crm.run("restore", str(_damaged(source.archive, tmp_path, edit)), "--yes")
    assert result.exit_code != 0
    assert "damaged" in result.output and "crm_customer" in result.output
    assert inspect_tables(url) == []


def test_an_archive_needing_a_missing_plugin_or_a_newer_schema_is_refused(source, target, tmp_path):
    crm, url = target(plugins="")
    missing = crm.run("restore", str(source.archive), "--yes")
    assert missing.exit_code != 0 and "testplugin" in missing.output

    crm, url = target()

    def newer(name: str, data: bytes) -> bytes:
        if name != "manifest.json":
            return data
        manifest = json.loads(data)
        manifest["lineages"]["core"] = ["9999_from_the_future"]
        return json.dumps(manifest).encode()

    result = crm.run("restore", str(_damaged(source.archive, tmp_path, newer)), "--yes")
    assert result.exit_code != 0
    assert "newer than this CRM" in result.output and "9999_from_the_future" in result.output
    assert inspect_tables(url) == []


def test_backup_without_a_name_writes_a_dated_archive_here(source, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    out = InProcessCrm(lambda: source.app)("backup")
    [written] = list(tmp_path.glob("crm-backup-*.zip"))
    assert re.fullmatch(r"crm-backup-\d{8}-\d{6}\.zip", written.name)
    assert written.name in out and "3 files" not in out
    with zipfile.ZipFile(written) as archive:
        assert archive.testzip() is None


def test_the_checksum_is_the_same_for_the_same_data_in_each_backend_form():
    columns = [
        {"name": "id", "kind": "int"},
        {"name": "at", "kind": "datetime"},
        {"name": "amount", "kind": "decimal"},
        {"name": "flag", "kind": "bool"},
        {"name": "data", "kind": "json"},
    ]
    sqlite_form = TableDigest(columns)
    sqlite_form.add(
        {
            "id": 1,
            "at": datetime(2026, 1, 2, 3, 4, 5, 678901),
            "amount": Decimal("12.50"),
            "flag": 1,
            "data": {"b": 1.0, "a": "甲"},
        }
    )
    mariadb_form = TableDigest(columns)
    mariadb_form.add(
        {
            "id": 1,
            "at": datetime(2026, 1, 2, 3, 4, 5),
            "amount": Decimal("12.5"),
            "flag": True,
            "data": {"a": "甲", "b": 1},
        }
    )
    assert sqlite_form.sha256 == mariadb_form.sha256
    changed = TableDigest(columns)
    changed.add(
        {
            "id": 1,
            "at": datetime(2026, 1, 2, 3, 4, 5),
            "amount": Decimal("12.51"),
            "flag": True,
            "data": {"a": "甲", "b": 1},
        }
    )
    assert changed.sha256 != sqlite_form.sha256
