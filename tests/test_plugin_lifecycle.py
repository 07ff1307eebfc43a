"""A plugin's life, as an admin lives it: pip-installed as a wheel, listed, migrated by
``crm upgrade``, enabled and disabled without a restart, uninstalled with its tables."""

from __future__ import annotations

import importlib.metadata
import sys
from pathlib import Path

from flask import Flask
from flask.testing import FlaskClient
from flask_appbuilder import Model
from plugins_support import PLUGIN_SOURCES, engine_of, install_and_enable, plugin_row, state_of
from sqlalchemy import func, insert, inspect, text

from crm_core.plugins import lifecycle, migrations
from crm_core.testing import check_plugin_contract, schema_diff

GADGETS_SCREEN = "/gadgets/list/"
GADGETS_API = "/api/v1/gadget/"


def test_the_plugin_comes_from_its_wheel_not_from_the_source_tree(plugin_wheels):
    import crm_testplugin

    installed = Path(crm_testplugin.__file__).resolve()
    assert installed.is_relative_to(plugin_wheels.resolve())
    assert plugin_wheels.name == "site-packages"
    sources = PLUGIN_SOURCES.resolve()
    assert not any(Path(p or ".").resolve().is_relative_to(sources) for p in sys.path)
    dist = importlib.metadata.distribution("crm-testplugin")
    assert dist.version == "1.0.0"
    assert installed.is_relative_to(Path(str(dist.locate_file(""))).resolve())
    assert [(ep.name, ep.value) for ep in dist.entry_points if ep.group == "crm.plugins"] == [
        ("testplugin", "crm_testplugin")
    ]
    assert (installed.parent / "migrations" / "versions" / "0001_testplugin_tables.py").is_file()


def _tables(app: Flask) -> set[str]:
    return set(inspect(engine_of(app)).get_table_names())


def _count(app: Flask, table: str) -> int:
    with engine_of(app).connect() as conn:
        return int(conn.scalar(text(f"SELECT COUNT(*) FROM {table}")))


def _openapi_paths(client: FlaskClient) -> list[str]:
    response = client.get("/api/v1/_openapi")
    assert response.status_code == 200
    return list(response.get_json()["paths"])


def assert_shown(client: FlaskClient) -> None:
    """The plugin's screen, API, OpenAPI paths and menu entry are all there."""
    screen = client.get(GADGETS_SCREEN)
    assert screen.status_code == 200
    assert client.get(GADGETS_API).status_code == 200
    assert GADGETS_API in _openapi_paths(client)
    home = client.get("/").get_data(as_text=True)
    assert f'href="{GADGETS_SCREEN}"' in home


def assert_hidden(client: FlaskClient) -> None:
    """The plugin's screen and API answer 404 and it is gone from OpenAPI and the menu."""
    assert client.get(GADGETS_SCREEN).status_code == 404
    assert client.get(GADGETS_API).status_code == 404
    assert client.get(GADGETS_API + "_info").status_code == 404
    paths = _openapi_paths(client)
    assert not any("gadget" in path for path in paths)
    assert "/api/v1/customer/" in paths  # the core's APIs stay
    home = client.get("/").get_data(as_text=True)
    assert GADGETS_SCREEN not in home


def test_install_enable_disable_and_enable_again_without_a_restart(plugin_site):
    site = plugin_site("testplugin")
    cli = site.cli

    listing = cli("plugins", "list")
    assert "available" in plugin_row(listing, "testplugin")

    cli("upgrade")
    row = plugin_row(cli("plugins", "list"), "testplugin")
    assert "Test plugin" in row and "1.0.0" in row and "installed" in row
    app = site.start()  # the restart `crm upgrade` asks for after a new plugin
    assert {"tp_gadget", "tp_seen_event", "alembic_version_testplugin"} <= _tables(app)
    admin = site.client(app)
    assert_hidden(admin)  # installed, not enabled yet

    assert cli("plugins", "enable", "testplugin").strip() == "testplugin: enabled"
    assert_shown(admin)
    customer = admin.post("/api/v1/customer/", json={"name": "杭州西湖电子有限公司"})
    assert customer.status_code == 201
    customer_id = customer.get_json()["id"]
    gadget = admin.post(GADGETS_API, json={"name": "Widget-7", "customer_id": customer_id})
    assert gadget.status_code == 201, gadget.get_json()
    gadget_id = gadget.get_json()["id"]
    page = admin.get(f"/customer/{customer_id}").get_data(as_text=True)
    assert '<ul class="tp-gadgets"><li>Widget-7</li></ul>' in page  # its 360° panel
    assert "Gadget Widget-7" in page  # its timeline entry
    assert _count(app, "tp_seen_event") == 1  # its event handler saw customer.created

    assert cli("plugins", "disable", "testplugin").strip() == "testplugin: disabled"
    assert_hidden(admin)  # the same app object: no restart
    assert admin.get(f"{GADGETS_API}{gadget_id}").status_code == 404
    page = admin.get(f"/customer/{customer_id}").get_data(as_text=True)
    assert "Widget-7" not in page
    # Neither its validation rule nor its event handler is called while it is disabled.
    assert admin.post("/api/v1/customer/", json={"name": "VETO ME"}).status_code == 201
    assert _count(app, "tp_seen_event") == 1
    assert _count(app, "tp_gadget") == 1  # its data stays
    assert state_of(app, "testplugin") == "disabled"

    cli("plugins", "enable", "testplugin")
    assert_shown(admin)
    listed = admin.get(GADGETS_API).get_json()["result"]
    assert [(g["id"], g["name"]) for g in listed] == [(gadget_id, "Widget-7")]
    assert "Widget-7" in admin.get(GADGETS_SCREEN).get_data(as_text=True)

    restarted = site.start()  # and the state survives a restart
    assert_shown(site.client(restarted))


def test_plugin_lineage_has_its_own_version_table_and_migrates_down_and_up(plugin_site):
    site = plugin_site("testplugin")
    app = site.start()
    install_and_enable(app, "testplugin")
    with engine_of(app).connect() as conn:
        assert conn.scalar(text("SELECT version_num FROM alembic_version_testplugin")) == (
            "0002_testplugin_custom"
        )
        core_versions = conn.scalars(text("SELECT version_num FROM alembic_version")).all()
        assert core_versions and "0001_testplugin" not in core_versions

    with app.app_context():
        engine = engine_of(app)
        lineage = lifecycle.lineage(app.extensions["crm"].plugins["testplugin"])
        assert lineage is not None and lineage.version_table == "alembic_version_testplugin"
        assert schema_diff(engine, ("tp_",)) == [], "models and migrations disagree"
        migrations.downgrade(engine, lineage, "base")
        assert not {t for t in _tables(app) if t.startswith("tp_")}
        assert migrations.current(engine, lineage) is None
        migrations.upgrade(engine, lineage)
        assert {"tp_gadget", "tp_seen_event"} <= _tables(app)
        assert migrations.current(engine, lineage) == migrations.head(lineage)
        assert "crm_customer" in _tables(app)  # the core's tables were never touched

    check_plugin_contract(app, "testplugin")


def test_uninstall_drops_the_tables_only_when_confirmed(plugin_site):
    site = plugin_site("testplugin")
    crm = site.crm
    crm("upgrade")
    crm("plugins", "enable", "testplugin")
    app = site.start()
    gadget = Model.metadata.tables["tp_gadget"]
    with engine_of(app).begin() as conn:
        conn.execute(
            insert(gadget).values(
                name="Keep me", active=True, version=1, created_at=func.now(), updated_at=func.now()
            )
        )

    refused = crm.run("plugins", "uninstall", "testplugin")
    assert refused.exit_code != 0
    assert "deletes its tables and data; confirm" in refused.stderr
    assert _count(app, "tp_gadget") == 1
    assert state_of(app, "testplugin") == "enabled"

    assert crm("plugins", "uninstall", "testplugin", "--yes").strip() == "testplugin: available"
    assert not {t for t in _tables(app) if t.startswith("tp_")}
    assert "crm_customer" in _tables(app)
    assert state_of(app, "testplugin") == "available"
    admin = site.client(app)
    assert admin.get(GADGETS_SCREEN).status_code == 404
    assert admin.get(GADGETS_API).status_code == 404

    crm("upgrade")  # installing again starts from empty tables
    assert _count(app, "tp_gadget") == 0
    assert state_of(app, "testplugin") == "installed"
