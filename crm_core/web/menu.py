"""A menu that leaves out entries of disabled plugins, and categories left empty by them."""

from __future__ import annotations

from typing import Any

from flask import has_request_context
from flask_appbuilder.menu import Menu


class CrmMenu(Menu):
    """Flask-AppBuilder's navbar ignores a menu item's condition; this menu applies it."""

    def get_list(self) -> list[Any]:
        """The entries to show in this request. Outside a request every entry is listed:
        Flask-AppBuilder's permission sync (``crm upgrade``) walks this list too, and must create
        the menu permissions of plugins that are not enabled yet."""
        if not has_request_context():
            return list(self.menu)
        visible = []
        for item in self.menu:
            if not item.should_render():
                continue
            if item.childs:
                children = [c for c in item.childs if c.name == "-" or c.should_render()]
                if not any(c.name != "-" for c in children):
                    continue
                item = _Filtered(item, children)
            visible.append(item)
        return visible


class _Filtered:
    """A category entry seen through a filter of its children, leaving the original intact."""

    def __init__(self, item: Any, childs: list[Any]) -> None:
        self._item = item
        self.childs = childs

    def __getattr__(self, name: str) -> Any:
        return getattr(self._item, name)
