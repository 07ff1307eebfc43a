"""Manifests are checked and dependencies resolved before anything loads: a plugin whose manifest
is wrong or whose dependency is missing, of the wrong version or circular is listed with a clear
error and stays out, and the rest load in dependency order."""

from __future__ import annotations

import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest
from markupsafe import escape
from plugins_support import PluginSite, plugin_row

from crm_core import Manifest, ManifestError, __version__
from crm_core.cli.db import upgrade_all
from crm_core.plugins import lifecycle
from crm_core.plugins.discovery import PluginInfo
from crm_core.plugins.ordering import resolve


def _hooks_file(folder: Path, stem: str, manifest: str | None, body: str = "") -> None:
    head = "import crm_core\n"
    if manifest is not None:
        head += f"manifest = crm_core.Manifest({manifest})\n"
    (folder / f"{stem}.py").write_text(head + textwrap.dedent(body), encoding="utf-8")


HOOKS = {
    # discovered before the plugin it needs; loads after it
    "a_child": 'name="childplugin", version="1.2", depends={"parentplugin": ">=1,<2"}',
    "b_parent": 'name="parentplugin", version="1.5"',
    "c_wants_testplugin": 'name="wantstp", version="1.0", depends={"testplugin": "~=1.0"}',
    "d_missing": 'name="needsmissing", version="1.0", depends={"nosuchplugin": ""}',
    "e_too_new": 'name="needsnew", version="1.0", depends={"testplugin": ">=2"}',
    "f_transitive": 'name="needsblocked", version="1.0", depends={"needsmissing": ""}',
    "g_core": 'name="futurecore", version="1.0", requires_core=">=99"',
    "h_cycle_a": 'name="cyclea", version="1.0", depends={"cycleb": ""}',
    "i_cycle_b": 'name="cycleb", version="1.0", depends={"cyclea": ""}',
    "j_bad_name": 'name="Bad Name", version="1.0"',
    "k_bad_version": 'name="badversion", version="one"',
    "l_twin_1": 'name="twin", version="1.0"',
    "m_twin_2": 'name="twin", version="2.0"',
}
ERRORS = {
    "needsmissing": "depends: plugin 'nosuchplugin' is not installed (pip install it first)",
    "needsnew": "depends: needs testplugin >=2, found 1.0.0",
    "needsblocked": "depends: plugin 'needsmissing' cannot be loaded",
    "futurecore": f"requires_core: needs core >=99, this is {__version__}",
    "cyclea": "depends: circular dependency",
    "cycleb": "depends: circular dependency",
    "hooks_j_bad_name": "ManifestError: name: 'Bad Name' must be 2-40 lower-case letters, digits",
    "hooks_k_bad_version": "ManifestError: version: 'one' is not a version",
    "twin": "two plugins are named 'twin'",
}
LOADED = ["testplugin", "parentplugin", "childplugin", "wantstp", "hooks_plain"]


@pytest.fixture
def dependency_site(tmp_path: Path, plugin_wheels: Path) -> Iterator[PluginSite]:
    hooks = tmp_path / "hooks"
    hooks.mkdir()
    for stem, manifest in HOOKS.items():
        _hooks_file(hooks, stem, manifest)
    # A site-local hooks file needs no manifest; it is named after the file.
    _hooks_file(
        hooks,
        "plain",
        None,
        """
        @crm_core.hookimpl
        def validate_change(change):
            if getattr(change.record, "name", None) == "SITE VETO":
                return "refused by the site's own rule"
        """,
    )
    names = {"testplugin", "hooks_plain", "hooks_j_bad_name", "hooks_k_bad_version"}
    names |= {m.split('"')[1] for m in HOOKS.values()}
    url = f"sqlite:///{tmp_path / 'deps.db'}"
    site = PluginSite(url, tmp_path, ",".join(sorted(names)), plugin_wheels, hooks)
    yield site
    site.close()


def test_blocked_plugins_are_listed_with_their_error_and_the_rest_load_in_order(
    dependency_site,
):
    app = dependency_site.start()
    registry = app.extensions["crm"]
    errors = {info.name: info.error or "" for info in registry.ordered() if info.error}
    assert set(errors) == set(ERRORS)
    for name, message in ERRORS.items():
        assert message in errors[name], (name, errors[name])
    assert errors["cyclea"].endswith(("cyclea → cycleb → cyclea", "cycleb → cyclea → cycleb"))

    loaded = [info.name for info in registry.ordered() if info.loaded]
    assert sorted(loaded) == sorted(LOADED)
    assert loaded.index("parentplugin") < loaded.index("childplugin")
    assert loaded.index("testplugin") < loaded.index("wantstp")
    assert registry.plugins["parentplugin"].dependents == ["childplugin"]
    for name in errors:
        assert registry.pm.get_plugin(name) is None, f"{name} must not be loaded"

    crm = dependency_site.crm
    crm("upgrade")  # installs what can load, leaves the rest alone
    listing = crm("plugins", "list")
    for name, message in ERRORS.items():
        row = plugin_row(listing, name)
        assert "| available |" in row and message in row, row
    assert "| enabled |" in plugin_row(listing, "hooks_plain")
    assert "| installed |" in plugin_row(listing, "childplugin")
    assert "parentplugin>=1,<2" in plugin_row(listing, "childplugin")
    enable = crm.run("plugins", "enable", "needsnew")
    assert enable.exit_code != 0 and "cannot be loaded" in enable.stderr
    enable = crm.run("plugins", "enable", "childplugin")
    assert enable.exit_code != 0 and "enable 'parentplugin' first" in enable.stderr

    admin = dependency_site.client(app)
    page = admin.get("/modules/").get_data(as_text=True)
    for message in ERRORS.values():
        assert str(escape(message)) in page
    vetoed = admin.post("/api/v1/customer/", json={"name": "SITE VETO"})
    assert vetoed.status_code == 422  # the site hooks file's rule is live
    assert vetoed.get_json()["message"] == {"_schema": ["refused by the site's own rule"]}


def test_a_dependent_that_no_longer_loads_does_not_hold_its_dependency(tmp_path, plugin_wheels):
    hooks = tmp_path / "hooks"
    hooks.mkdir()
    _hooks_file(hooks, "base", 'name="basex", version="1.0"')
    _hooks_file(hooks, "user", 'name="userx", version="1.0", depends={"basex": "<2"}')
    site = PluginSite(
        f"sqlite:///{tmp_path / 'held.db'}", tmp_path, "basex,userx", plugin_wheels, hooks
    )
    try:
        app = site.start()
        with app.app_context():
            upgrade_all()
            lifecycle.enable("basex")
            lifecycle.enable("userx")
            with pytest.raises(lifecycle.LifecycleError, match="needed by userx"):
                lifecycle.disable("basex")
        # An update of userx now needs a basex this site does not have: it stops loading, but
        # its stored state still says enabled.
        _hooks_file(hooks, "user", 'name="userx", version="1.1", depends={"basex": ">=2"}')
        restarted = site.start()
        with restarted.app_context():
            registry = restarted.extensions["crm"]
            assert registry.plugins["userx"].error == "depends: needs basex >=2, found 1.0"
            assert registry.state_of("userx") == "enabled"
            assert not registry.is_enabled("userx")
            assert "userx" not in registry.enabled_names()
            lifecycle.disable("basex")
            assert registry.state_of("basex") == "disabled"
    finally:
        site.close()


def _info(name: str, version: str = "1.0", **manifest: object) -> PluginInfo:
    info = PluginInfo(name=name, source="test", manifest=Manifest(name, version, **manifest))
    info.module = object()  # type: ignore[assignment]
    return info


def test_resolve_orders_a_diamond_and_blocks_everything_above_a_missing_dependency():
    plugins = [
        _info("top", depends={"left": "", "right": ""}),
        _info("left", depends={"base": ">=1"}),
        _info("right", depends={"base": "<2"}),
        _info("base", "1.4"),
        _info("leaf", depends={"gone": ""}),
        _info("aboveleaf", depends={"leaf": ""}),
    ]
    ordered = resolve(plugins, "0.1.0")
    names = [p.name for p in ordered]
    assert names.index("base") < names.index("left") < names.index("top")
    assert names.index("right") < names.index("top")
    assert names[-2:] == ["leaf", "aboveleaf"]  # blocked ones come last
    assert [p.name for p in ordered if p.error] == ["leaf", "aboveleaf"]


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"name": "x"}, "name: 'x' must be 2-40 lower-case letters"),
        ({"name": "has-dash"}, "name: 'has-dash' must be"),
        ({"version": "1.0 beta"}, "version: '1.0 beta' is not a version"),
        ({"phase": 4}, "phase: 4 must be 1, 2 or 3"),
        ({"depends": {"sfa": ">=>1"}}, "depends[sfa]: '>=>1' is not a version range"),
        ({"requires_core": "new"}, "depends[requires_core]: 'new' is not a version range"),
        ({"migrations": "/somewhere"}, "table_prefix: required when the plugin has migrations"),
        ({"table_prefix": "crm_x_"}, "table_prefix: 'crm_x_' is reserved for the core"),
    ],
)
def test_manifest_names_the_wrong_field(fields: dict[str, object], message: str):
    values: dict[str, object] = {"name": "good", "version": "1.0", **fields}
    with pytest.raises(ManifestError, match=message.replace("[", r"\[").replace("]", r"\]")):
        Manifest(**values)  # type: ignore[arg-type]


def test_manifest_checks_dependency_versions():
    manifest = Manifest(
        "child", "1.0", depends={"parent": ">=1.2,<2", "any": ""}, requires_core=">=0.1"
    )
    assert manifest.accepts("parent", "1.2.3")
    assert not manifest.accepts("parent", "2.0")
    assert manifest.accepts("any", "0.0.1")
    assert manifest.accepts("core", "0.1.0") and not manifest.accepts("core", "0.0.9")
