"""Maintain crm_core's translation catalogs: extract, update, compile.

Flask-AppBuilder ships its own catalogs (its zh one is old and incomplete). Flask-Babel loads
FAB's catalog first and ours (``crm_core/translations``) second, so every msgid in ours wins.
That is why the template holds three kinds of msgids:

* crm_core's own strings: Python (``_``, ``gettext``, ``_l``, ``lazy_gettext``) and the Jinja2
  templates, as mapped by ``babel.cfg``;
* Flask-AppBuilder's strings (its Python code and templates: login page, lists, search, filters,
  security menus), found in the installed ``flask_appbuilder`` package;
* ``DYNAMIC_MSGIDS``: strings translated at run time from a variable (``_(r.state)``), which no
  extractor can see.

Usage (from the repository root)::

    .venv/bin/python scripts/i18n.py extract   # -> crm_core/translations/messages.pot
    .venv/bin/python scripts/i18n.py update    # merge the .pot into the zh_Hans_CN and en .po
    .venv/bin/python scripts/i18n.py compile   # messages.po -> messages.mo

After adding or changing a string: ``extract``, ``update``, translate the new (empty or fuzzy)
entries of ``crm_core/translations/zh_Hans_CN/LC_MESSAGES/messages.po`` (remove the ``fuzzy`` flag
once checked), ``compile``, and commit the .po and the .mo together. English is the source
language: the en catalog's msgstrs stay empty, so the msgid is shown.

``tests/test_translations.py`` fails while a msgid is missing from the zh_Hans_CN (zh_CN) catalog,
untranslated, fuzzy, has broken ``%(name)s`` placeholders, or the .mo is stale.
"""

from __future__ import annotations

import argparse
import importlib.util
import sys
from collections.abc import Iterable
from datetime import datetime
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

from babel import Locale
from babel.messages.catalog import Catalog
from babel.messages.extract import DEFAULT_KEYWORDS, extract_from_dir
from babel.messages.frontend import parse_mapping_cfg
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po, write_po
from babel.util import LOCALTZ

ROOT = Path(__file__).resolve().parents[1]
BABEL_CFG = ROOT / "babel.cfg"
TRANSLATIONS = ROOT / "crm_core" / "translations"
POT = TRANSLATIONS / "messages.pot"
#: Catalog directories. Flask-Babel looks a locale up by ``str(babel.Locale.parse(name))``, and
#: Babel spells the configured "zh_CN" as "zh_Hans_CN" (CLDR likely subtags), so a directory
#: named zh_CN would never be loaded.
LOCALES = ("zh_Hans_CN", "en")
SOURCE_LOCALE = "en"

#: Gettext functions, in crm_core (``_l``) and in Flask-AppBuilder (``__``, formatter).
KEYWORDS = {
    **DEFAULT_KEYWORDS,
    "_l": None,
    "lazy_gettext": None,
    "lazy_pgettext": ((1, "c"), 2),
    "__": None,
    "lazy_formatter_gettext": None,
}
COMMENT_TAGS = ("TRANSLATORS:",)

#: Flask-AppBuilder's sources, relative to its package directory.
FAB_METHOD_MAP = [("**.py", "python"), ("templates/**.html", "jinja2")]

#: msgid -> where it is used; translated from a variable, so not extractable.
DYNAMIC_MSGIDS = {
    "available": "crm_core/plugins/models.py: plugin state, shown by crm/modules.html",
    "installed": "crm_core/plugins/models.py: plugin state, shown by crm/modules.html",
    "enabled": "crm_core/plugins/models.py: plugin state, shown by crm/modules.html",
    "disabled": "crm_core/plugins/models.py: plugin state, shown by crm/modules.html",
}

HEADER_COMMENTS = {
    "zh_Hans_CN": (
        "# Simplified Chinese (zh_CN) for crm-core and the Flask-AppBuilder\n"
        "# screens it shows; these override FAB's own zh catalog.\n"
        "# Terms: customer 客户, contact 联系人, shared pool 公海, claim 领取,\n"
        "# release 退回公海, owner 负责人, follow-up 跟进记录, team 部门,\n"
        "# module 模块, enable/disable 启用/停用, archive 归档, tier 客户等级,\n"
        "# lifecycle stage 生命周期阶段. Keep %(name)s placeholders as they are.\n"
        "# Maintained with scripts/i18n.py."
    ),
    "en": (
        "# English, the source language of crm-core: msgstrs stay empty, so the\n"
        "# msgid is shown; fill one in only to reword an English string.\n"
        "# Maintained with scripts/i18n.py."
    ),
}


def _project_version() -> str:
    try:
        return version("crm-core")
    except PackageNotFoundError:
        return "0"


def _new_catalog(locale: str | None = None) -> Catalog:
    return Catalog(
        locale=locale,
        project="crm-core",
        version=_project_version(),
        copyright_holder="crm-core contributors",
        charset="utf-8",
        fuzzy=False,
    )


def _add(catalog: Catalog, found: Iterable[tuple], prefix: str = "") -> None:
    for filename, lineno, message, comments, context in found:
        msgid = message[0] if isinstance(message, tuple) else message
        if not msgid:
            continue
        catalog.add(
            message,
            None,
            [(prefix + Path(filename).as_posix(), lineno)],
            auto_comments=comments,
            context=context,
        )


def crm_catalog() -> Catalog:
    """Every msgid of crm_core's Python code and templates, as ``babel.cfg`` maps them."""
    with BABEL_CFG.open() as cfg:
        method_map, options_map = parse_mapping_cfg(cfg)
    catalog = _new_catalog()
    _add(
        catalog,
        extract_from_dir(
            ROOT,
            method_map,
            options_map,
            keywords=KEYWORDS,
            comment_tags=COMMENT_TAGS,
            strip_comment_tags=True,
        ),
    )
    return catalog


def fab_dir() -> Path:
    """The installed Flask-AppBuilder package (found without importing it)."""
    spec = importlib.util.find_spec("flask_appbuilder")
    if spec is None or spec.origin is None:
        raise SystemExit("flask_appbuilder is not installed")
    return Path(spec.origin).parent


def fab_catalog() -> Catalog:
    """Every msgid of Flask-AppBuilder's Python code and templates."""
    catalog = _new_catalog()
    _add(
        catalog,
        extract_from_dir(fab_dir(), FAB_METHOD_MAP, keywords=KEYWORDS),
        prefix="flask_appbuilder/",
    )
    return catalog


def template_catalog() -> Catalog:
    """The template: crm_core's msgids, then Flask-AppBuilder's, then the dynamic ones."""
    catalog = _new_catalog()
    for part in (crm_catalog(), fab_catalog()):
        for message in part:
            if message.id:
                catalog.add(
                    message.id,
                    None,
                    message.locations,
                    flags=message.flags,
                    auto_comments=message.auto_comments,
                    context=message.context,
                )
    for msgid, where in DYNAMIC_MSGIDS.items():
        existing = catalog.get(msgid)
        if existing is None:
            catalog.add(msgid, None, auto_comments=[where])
        elif where not in existing.auto_comments:
            existing.auto_comments.append(where)
    return catalog


def po_path(locale: str) -> Path:
    return TRANSLATIONS / locale / "LC_MESSAGES" / "messages.po"


def _write_po(path: Path, catalog: Catalog, **options: bool) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("wb") as out:
        write_po(out, catalog, include_lineno=False, **options)


def extract(_args: argparse.Namespace) -> int:
    catalog = template_catalog()
    _write_po(POT, catalog)
    print(f"{POT.relative_to(ROOT)}: {len(catalog)} msgids")
    return 0


def update(args: argparse.Namespace) -> int:
    with POT.open("rb") as f:
        template = read_po(f)
    for locale in args.locales:
        path = po_path(locale)
        if path.exists():
            with path.open("rb") as f:
                catalog = read_po(f, locale=locale)
            catalog.update(template, no_fuzzy_matching=args.no_fuzzy_matching)
            action = "updated"
        else:
            with POT.open("rb") as f:
                catalog = read_po(f, locale=locale)
            catalog.locale = Locale.parse(locale)
            catalog.revision_date = datetime.now(LOCALTZ)
            catalog.fuzzy = False
            action = "created"
        catalog.header_comment = HEADER_COMMENTS.get(locale, catalog.header_comment)
        catalog.last_translator = "crm-core contributors"
        _write_po(path, catalog, ignore_obsolete=True)
        print(f"{path.relative_to(ROOT)}: {action}, {_stats(catalog, locale)}")
    return 0


def _stats(catalog: Catalog, locale: str) -> str:
    messages = [m for m in catalog if m.id]
    if locale == SOURCE_LOCALE:
        return f"{len(messages)} msgids (source language)"
    empty = sum(1 for m in messages if not _translated(m.string))
    fuzzy = sum(1 for m in messages if m.fuzzy)
    return f"{len(messages)} msgids, {empty} untranslated, {fuzzy} fuzzy"


def _translated(string: str | tuple[str, ...]) -> bool:
    return all(string) if isinstance(string, tuple) else bool(string)


def compile_catalog(po: Path, mo: Path) -> list[str]:
    """Write ``mo`` from ``po`` (fuzzy entries left out); return placeholder errors, if any."""
    with po.open("rb") as f:
        catalog = read_po(f)
    errors = [
        f"{po.relative_to(ROOT) if po.is_relative_to(ROOT) else po}: {message.id!r}: {error}"
        for message, message_errors in catalog.check()
        for error in message_errors
    ]
    with mo.open("wb") as out:
        write_mo(out, catalog)
    return errors


def compile_(args: argparse.Namespace) -> int:
    failed = False
    for locale in args.locales:
        po = po_path(locale)
        errors = compile_catalog(po, po.with_suffix(".mo"))
        for error in errors:
            print(error, file=sys.stderr)
        failed = failed or bool(errors)
        with po.open("rb") as f:
            print(f"{po.with_suffix('.mo').relative_to(ROOT)}: {_stats(read_po(f), locale)}")
    return 1 if failed else 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("extract", help="write messages.pot from crm_core and Flask-AppBuilder")
    update_parser = commands.add_parser("update", help="merge messages.pot into the .po files")
    update_parser.add_argument(
        "--no-fuzzy-matching",
        action="store_true",
        help="leave new msgids empty instead of guessing from similar ones",
    )
    compile_parser = commands.add_parser("compile", help="compile the .po files to .mo")
    for sub in (update_parser, compile_parser):
        sub.add_argument("locales", nargs="*", default=list(LOCALES), help="default: all")
    args = parser.parse_args(argv)
    handlers = {"extract": extract, "update": update, "compile": compile_}
    return handlers[args.command](args)


if __name__ == "__main__":
    sys.exit(main())
