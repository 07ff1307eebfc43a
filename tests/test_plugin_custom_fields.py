"""A plugin's model takes custom fields the same way as the core's: the test plugin's gadgets."""

from __future__ import annotations

from helpers import define_field
from plugins_support import install_and_enable

GADGETS_API = "/api/v1/gadget/"


def test_a_custom_field_on_a_plugin_model_works_like_a_core_one(plugin_site):
    site = plugin_site("testplugin")
    app = site.start()
    install_and_enable(app, "testplugin")
    admin = site.client(app)

    screen = admin.get("/customfields/add").get_data(as_text=True)
    assert 'value="Gadget"' in screen  # offered as a record type
    define_field(
        admin,
        model="Gadget",
        name="colour",
        kind="choice",
        label_zh="颜色",
        choices="red|红色\nblue|蓝色",
        searchable="y",
    )
    define_field(admin, model="Gadget", name="weight_kg", kind="decimal", label_zh="重量")

    form = admin.get("/gadgets/add").get_data(as_text=True)
    assert "颜色" in form and 'name="custom__colour"' in form and "蓝色" in form
    added = admin.post(
        "/gadgets/add",
        data={"name": "Widget-R", "custom__colour": "red", "custom__weight_kg": "1.25"},
        follow_redirects=True,
    )
    assert added.status_code == 200
    made = admin.post(GADGETS_API, json={"name": "Widget-B", "custom": {"colour": "blue"}})
    assert made.status_code == 201, made.get_json()
    wrong = admin.post(GADGETS_API, json={"name": "Widget-X", "custom": {"colour": "green"}})
    assert wrong.status_code == 422 and "custom.colour" in wrong.get_json()["message"]
    bad_form = admin.post(
        "/gadgets/add", data={"name": "Widget-Y", "custom__weight_kg": "重"}, follow_redirects=True
    )
    assert "请输入数字" in bad_form.get_data(as_text=True)

    red = admin.get(GADGETS_API + "?q=(filters:!((col:custom__colour,opr:eq,value:red)))")
    assert [(g["name"], g["custom"]) for g in red.get_json()["result"]] == [
        ("Widget-R", {"colour": "red", "weight_kg": "1.25"})
    ]
    listed = admin.get("/gadgets/list/?_flt_0_custom__colour=blue").get_data(as_text=True)
    assert "Widget-B" in listed and "Widget-R" not in listed and "蓝色" in listed

    spec = admin.get("/api/v1/_openapi").get_json()["components"]["schemas"]
    assert spec["GadgetCustomFields"]["properties"]["colour"]["enum"] == ["red", "blue"]


def test_a_plugin_declares_its_picklists(plugin_site):
    site = plugin_site("testplugin")
    app = site.start()
    install_and_enable(app, "testplugin")
    listed = site.client(app).get("/picklists/list/").get_data(as_text=True)
    assert "尺寸" in listed and "testplugin" in listed
