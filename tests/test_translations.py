"""The translation catalogs: complete, compiled from the current .po, covering every msgid of
crm_core and Flask-AppBuilder, and actually shown on the screens (zh_CN by default, English
after ``/lang/en``). Catalogs are maintained with ``scripts/i18n.py``."""

from __future__ import annotations

import importlib.util
import re
from collections.abc import Iterable
from html.parser import HTMLParser
from pathlib import Path
from types import ModuleType

from babel import Locale
from babel.messages.catalog import Catalog
from babel.messages.mofile import read_mo
from babel.messages.pofile import read_po

ROOT = Path(__file__).resolve().parents[1]
ZH = "zh_Hans_CN"  # how Babel spells the configured zh_CN
PLACEHOLDER = re.compile(r"%\(\w+\)[a-z]|%[a-z%]")


def _load_i18n() -> ModuleType:
    spec = importlib.util.spec_from_file_location("crm_i18n", ROOT / "scripts" / "i18n.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


i18n = _load_i18n()


def _po(locale: str) -> Catalog:
    with i18n.po_path(locale).open("rb") as f:
        return read_po(f, locale=locale)


def _messages(catalog: Catalog) -> dict[tuple[str | None, object], object]:
    return {(m.context, m.id): m.string for m in catalog}


def _key(message) -> str:  # type: ignore[no-untyped-def]
    return f"{message.context}|{message.id}" if message.context else str(message.id)


# -- the catalogs ----------------------------------------------------------------------------


def test_zh_catalog_is_complete_and_reviewed():
    problems = []
    for message in _po(ZH):
        if not message.id:
            continue
        strings = message.string if isinstance(message.string, tuple) else (message.string,)
        if not all(strings):
            problems.append(f"untranslated: {_key(message)!r}")
        if message.fuzzy:
            problems.append(f"fuzzy: {_key(message)!r}")
        ids = message.id if isinstance(message.id, tuple) else (message.id,)
        expected = sorted(PLACEHOLDER.findall(ids[0]))
        for string in strings:
            if string and sorted(PLACEHOLDER.findall(string)) != expected:
                problems.append(f"placeholders differ: {_key(message)!r} -> {string!r}")
    assert not problems, "\n".join(problems)


def test_catalogs_have_the_same_msgids():
    zh = {(m.context, m.id) for m in _po(ZH)}
    en = {(m.context, m.id) for m in _po("en")}
    assert zh == en, "run `python scripts/i18n.py update`"


def test_mo_files_are_compiled_from_the_current_po(tmp_path):
    for locale in i18n.LOCALES:
        po = i18n.po_path(locale)
        fresh = tmp_path / f"{locale}.mo"
        assert not i18n.compile_catalog(po, fresh)
        with fresh.open("rb") as f:
            expected = _messages(read_mo(f))
        with po.with_suffix(".mo").open("rb") as f:
            committed = _messages(read_mo(f))
        assert committed == expected, f"{locale}: run `python scripts/i18n.py compile`"


def test_every_extracted_msgid_is_in_the_catalog():
    """A string newly wrapped in ``_()``/``_l()`` (or a new FAB msgid) fails here until it is
    extracted, translated and compiled."""
    catalog = _po(ZH)
    template = i18n.template_catalog()
    crm_ids = {(m.context, m.id) for m in i18n.crm_catalog() if m.id}
    assert ("follow-up kind", "E-mail") in crm_ids  # the extraction itself works
    missing = [_key(m) for m in template if m.id and catalog.get(m.id, m.context) is None]
    assert not missing, "not in the zh catalog (run scripts/i18n.py extract + update):\n" + (
        "\n".join(missing)
    )


def test_catalog_directories_are_where_flask_babel_looks(app):
    for language in app.config["LANGUAGES"]:
        directory = i18n.TRANSLATIONS / str(Locale.parse(language)) / "LC_MESSAGES"
        assert (directory / "messages.mo").is_file(), f"{language}: no catalog in {directory}"


# -- the screens -----------------------------------------------------------------------------


class _VisibleText(HTMLParser):
    """Text a user reads: element text and the labelling attributes, not scripts or styles."""

    ATTRIBUTES = {"placeholder", "data-placeholder", "title", "alt", "aria-label"}
    BUTTONS = {"submit", "button", "reset"}

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self._hidden = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in ("script", "style"):
            self._hidden += 1
            return
        values = dict(attrs)
        self.parts += [v for k, v in attrs if k in self.ATTRIBUTES and v]
        if tag == "input" and (values.get("type") or "").lower() in self.BUTTONS:
            self.parts.append(values.get("value") or "")

    def handle_endtag(self, tag: str) -> None:
        if tag in ("script", "style") and self._hidden:
            self._hidden -= 1

    def handle_data(self, data: str) -> None:
        if not self._hidden:
            self.parts.append(data)


def visible_text(page: str, language_names: Iterable[str] = ()) -> str:
    parser = _VisibleText()
    parser.feed(page)
    parser.close()
    text = " ".join(parser.parts)
    for name in language_names:  # the language picker names each language in its own words
        text = text.replace(name, " ")
    return re.sub(r"\s+", " ", text)


def _english_pattern() -> re.Pattern[str]:
    """Every English msgid we translate (without placeholders), as a whole-word pattern."""
    words = {
        str(m.id).strip()
        for m in _po(ZH)
        if isinstance(m.id, str) and re.search("[A-Za-z]", m.id) and "%" not in m.id
    }
    alternatives = "|".join(re.escape(w) for w in sorted(words, key=len, reverse=True))
    return re.compile(rf"(?<![A-Za-z0-9_])(?:{alternatives})(?![A-Za-z0-9_])")


def _seed(client) -> int:  # type: ignore[no-untyped-def]
    """A customer with a contact and a follow-up, and a second customer in the shared pool."""
    response = client.post("/api/v1/customer/", json={"name": "测试公司"})
    assert response.status_code == 201, response.get_json()
    pk = response.get_json()["id"]
    contact = {"customer_id": pk, "name": "王伟", "mobile": "13812345678"}
    assert client.post("/api/v1/contact/", json=contact).status_code == 201
    activity = {"customer_id": pk, "kind": "call", "subject": "电话沟通"}
    assert client.post("/api/v1/activity/", json=activity).status_code == 201
    pooled = client.post("/api/v1/customer/", json={"name": "深圳市前海云图科技有限公司"})
    assert pooled.status_code == 201
    released = client.post(f"/api/v1/customer/{pooled.get_json()['id']}/release")
    assert released.status_code == 200
    return int(pk)


#: page -> Chinese words it must show (so an error page cannot pass by being empty).
PAGES = {
    "/": ["我的客户", "公海"],
    "/customers/list/": ["客户", "搜索", "负责人"],
    "/customers/add": ["新建客户", "统一社会信用代码", "保存"],
    "/customer/{pk}": ["退回公海", "联系人", "跟进记录", "电话"],
    "/pool/list/": ["公海", "进入公海时间"],
    "/contacts/list/": ["联系人", "手机"],
    "/activities/list/": ["跟进记录", "跟进方式", "电话"],
    "/modules/": ["模块", "状态"],
    "/settings/": ["设置", "公海", "保存"],
}


def untranslated(pages: dict[str, tuple[object, list[str]]], names: Iterable[str]) -> list[str]:
    """Problems of zh_CN pages (``url -> (response, words expected)``): English words shown,
    expected Chinese words absent. ``names`` are shown as they are (language and role names)."""
    english, problems = _english_pattern(), []
    for url, (response, expected) in pages.items():
        assert response.status_code == 200, url  # type: ignore[attr-defined]
        text = visible_text(response.get_data(as_text=True), names)  # type: ignore[attr-defined]
        found = sorted(set(english.findall(text)))
        if found:
            problems.append(f"{url}: English {found}")
        absent = [word for word in expected if word not in text]
        if absent:
            problems.append(f"{url}: missing {absent}")
    return problems


def test_screens_show_no_english_in_zh_cn(app, admin_client):
    pk = _seed(admin_client)
    names = [v["name"] for v in app.config["LANGUAGES"].values()]
    login = app.test_client().get("/login/")
    pages = {"/login/": (login, ["登录", "用户名", "密码"])}
    for path, expected in PAGES.items():
        url = path.format(pk=pk)
        pages[url] = (admin_client.get(url), expected)
    problems = untranslated(pages, names)
    assert not problems, "\n".join(problems)


def test_lang_en_switches_the_screens_to_english(app, admin_client):
    pk = _seed(admin_client)
    assert admin_client.get("/lang/en").status_code == 302
    listing = visible_text(admin_client.get("/customers/list/").get_data(as_text=True))
    assert "Customers" in listing and "Search" in listing and "Shared pool" in listing
    assert "客户" not in listing and "搜索" not in listing
    assert {"Customers", "Search", "Add Filter"} <= set(_english_pattern().findall(listing))
    page = visible_text(admin_client.get(f"/customer/{pk}").get_data(as_text=True))
    assert "Release to pool" in page and "Call" in page and "退回公海" not in page
    assert admin_client.get("/lang/zh_CN").status_code == 302
    again = visible_text(admin_client.get("/customers/list/").get_data(as_text=True))
    assert "客户" in again and "Customers" not in again


def test_dialogs_and_the_signed_in_name_read_as_chinese(app, admin_client):
    from crm_core.db import session

    def rename(first: str, last: str) -> tuple[str, str]:
        with app.app_context():
            user = app.appbuilder.sm.find_user(username="t_admin")
            before = (user.first_name, user.last_name)
            user.first_name, user.last_name = first, last
            session().commit()
            return before

    before = rename("芳", "王")
    try:
        page = admin_client.get("/customers/list/").get_data(as_text=True)
    finally:
        rename(*before)
    assert ">取消</button>" in page and ">确定</a>" in page  # the confirmation dialog
    assert ">Cancel<" not in page and ">OK<" not in page
    assert "王芳" in page and "芳 王" not in page  # surname first in the navbar
