"""Roles and permissions as users read them, in their language.

A role is stored under a stable English name (``Sales Rep``): record rules, approval steps,
``crm users create --role`` and configuration bundles refer to it by that name. Screens show
the label its plugin gave it (``RoleSpec.label``: 销售代表 in zh_CN). A role an admin made has
no label and is shown by its name.

A permission is a pair of an action (``can_list``) and a view or menu entry
(``CustomerView``). Screens show it as "客户 · 列表": the view's menu label (or, for a view
without a menu entry, the label of the screen of the same records) and the action's label.

:func:`install` makes Flask-AppBuilder's ``Role`` and ``PermissionView`` print these labels
(``str()``), which is what its select boxes, filters and lists show; ``repr()`` stays the
stored name for logs.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

from flask import current_app, has_app_context
from flask_appbuilder import Model
from flask_appbuilder.security.sqla.models import PermissionView, Role
from flask_babel import force_locale, gettext, lazy_pgettext
from flask_babel import lazy_gettext as _l
from markupsafe import Markup

from .audit import audited_name

#: Labels of the roles Flask-AppBuilder itself makes (AUTH_ROLE_ADMIN, AUTH_ROLE_PUBLIC).
BUILTIN_ROLE_LABELS = {
    "Admin": lazy_pgettext("role", "Administrator"),
    "Public": lazy_pgettext("role", "Public (not logged in)"),
}

#: Actions a permission may name, beyond a view's own actions (whose labels the view gives).
ACTION_LABELS = {
    "can_list": _l("List"),
    "archive": _l("Archive"),
    "can_show": _l("Show"),
    "can_add": _l("Add"),
    "can_edit": _l("Edit"),
    "can_delete": _l("Delete"),
    "menu_access": _l("Menu entry"),
    "can_download": _l("Download files"),
    "can_export": _l("Export"),
    "can_get": _l("Read (API)"),
    "can_get_list": _l("Read (API)"),
    "can_info": _l("Read the form's description (API)"),
    "can_post": _l("Create (API)"),
    "can_put": _l("Change (API)"),
    "can_claim": _l("Claim from the shared pool"),
    "can_release": _l("Release to the shared pool"),
    "can_decide": _l("Approve or reject"),
    "can_inbox": _l("See the approvals waiting"),
    "can_submit": _l("Submit for approval"),
    "can_withdraw": _l("Withdraw"),
    "can_find": _l("Find duplicates"),
    "can_merge": _l("Merge"),
    "can_recompute": _l("Recompute"),
    "can_reveal": _l("Reveal one value (audited)"),
    "can_unmasked": _l("See every value unmasked"),
    "can_erase": _l("Erase (anonymise)"),
    "can_chart": _l("Chart"),
    "can_this_form_get": _l("Open the form"),
    "can_this_form_post": _l("Send the form"),
    "can_userinfo": _l("See one's own account"),
    "userinfoedit": _l("Edit one's own account"),
    "resetmypassword": _l("Change one's own password"),
    "resetpasswords": _l("Reset others' passwords"),
    "copyrole": _l("Copy roles"),
}

#: Views Flask-AppBuilder registers without a menu entry of their own.
BUILTIN_VIEW_LABELS = {
    "CrmAuthDBView": _l("Login"),
    "CrmResetMyPasswordView": _l("Reset my password"),
    "CrmResetPasswordView": _l("Reset Password"),
    "UserInfoEditView": _l("Edit User"),
    "CrmSecurityApi": _l("Login (API)"),
    "UtilView": _l("Back"),
    "LocaleView": _l("Language"),
    "MenuApi": _l("Menu (API)"),
    "OpenApi": _l("API description"),
    "SwaggerView": _l("API documentation"),
}

#: Audit entries' record types that no screen of the same records names.
AUDIT_TYPE_LABELS = {
    "user": _l("User"),
    "role": _l("Role"),
    "setting": _l("Settings"),
    "module": _l("Module"),
    "picklist_value": _l("Picklist value"),
    "automation_rule": _l("Automation rule"),
    "approval": _l("Approval"),
    "approval_task": _l("Approval task"),
    "approval_action": _l("Approval step taken"),
    "approval_process": _l("Approval process"),
    "approval_process_version": _l("Approval process version"),
}

_INDEX = "crm_permission_labels"


def role_label(name: str | None) -> str:
    """The label of the role stored as ``name``, in the user's language; else ``name``."""
    if not name or not has_app_context():
        return name or ""
    label = _role_labels().get(name)
    return str(label) if label else name


def role_named(text: str) -> str:
    """The stored name of the role ``text`` names by its name or by its label in any of the
    CRM's languages (an admin in zh_CN types 销售经理); ``text`` when no role matches."""
    wanted = text.strip()
    if not has_app_context() or wanted in _role_labels():
        return wanted
    for name, label in _role_labels().items():
        if label is not None and wanted in _translations(label):
            return name
    return wanted


def roles_text(roles: Iterable[Any]) -> str:
    """A user's roles for a list or a show screen."""
    return "、".join(sorted(str(r) for r in roles or ()))


def permission_label(action: str, view: str) -> str:
    """``view · action`` in the user's language."""
    view_label, action_label = _labels_of(action, view)
    return f"{view_label} · {action_label}"


def permissions_html(permissions: Iterable[Any]) -> Markup:
    """A role's permissions, folded under how many there are, then a line per screen with its
    actions in the order of :data:`ACTION_LABELS`: "客户：列表、查看、新建"."""
    order = {name: rank for rank, name in enumerate(ACTION_LABELS)}
    grouped: dict[str, list[tuple[int, str]]] = {}
    for pv in permissions or ():
        action = pv.permission.name
        view_label, action_label = _labels_of(action, pv.view_menu.name)
        grouped.setdefault(view_label, []).append((order.get(action, len(order)), action_label))
    summary = gettext(
        "%(permissions)s permissions on %(screens)s screens",
        permissions=sum(map(len, grouped.values())),
        screens=len(grouped),
    )
    lines = Markup("<br>").join(
        Markup("<b>{}</b>：{}").format(view, "、".join(label for _rank, label in sorted(actions)))
        for view, actions in sorted(grouped.items())
    )
    return Markup("<details><summary>{}</summary>{}</details>").format(summary, lines)


def audited_type_label(name: str) -> str:
    """An audit entry's record type (``record_rule``) as users read it: the label of the screen
    of its records (数据权限), else the model's ``__crm_label__``; else ``name``."""
    if not has_app_context():
        return name
    label = AUDIT_TYPE_LABELS.get(name) or _index()["audited"].get(name)
    return str(label) if label else name


def _labels_of(action: str, view: str) -> tuple[str, str]:
    index = _index()
    view_label = index["views"].get(view) or view
    action_label = index["actions"].get((action, view)) or ACTION_LABELS.get(action) or action
    return str(view_label), str(action_label)


def install() -> None:
    """Show roles and permissions by their labels wherever Flask-AppBuilder prints them."""
    Role.__str__ = lambda self: role_label(self.name)  # type: ignore[method-assign]
    PermissionView.__str__ = _permission_view_str  # type: ignore[method-assign]


def _permission_view_str(pv: PermissionView) -> str:
    if not has_app_context() or pv.permission is None or pv.view_menu is None:
        return repr(pv)
    return permission_label(pv.permission.name, pv.view_menu.name)


def _role_labels() -> dict[str, Any]:
    """Stored role name -> label (``None`` for a plugin's role that has none)."""
    index = _index()
    return index["roles"]  # type: ignore[no-any-return]


def _translations(label: Any) -> set[str]:
    """``label`` in each of the CRM's languages."""
    texts = set()
    for language in current_app.config.get("LANGUAGES", {}):
        with force_locale(language):
            texts.add(str(label))
    return texts


def _index() -> dict[str, Any]:
    """Labels of the app's roles, views and view actions, built once per app (lazily: it
    reads the menu, which is complete only once every plugin's views are registered)."""
    index = current_app.extensions.get(_INDEX)
    if index is None:
        index = current_app.extensions[_INDEX] = _build_index()
    return index  # type: ignore[no-any-return]


def _build_index() -> dict[str, Any]:
    appbuilder = current_app.appbuilder  # type: ignore[attr-defined]
    registry = current_app.extensions["crm"]
    roles: dict[str, Any] = dict(BUILTIN_ROLE_LABELS)
    for _owner, spec in registry.collect_specs("register_roles"):
        if not roles.get(spec.name):
            roles[spec.name] = spec.label or None

    views: dict[str, Any] = {}
    by_model: dict[Any, Any] = {}
    labelled = {spec.view: spec.label for _o, spec in registry.collect_specs("register_views")}
    labelled.update({spec.api: spec.label for _o, spec in registry.collect_specs("register_apis")})
    for item in _menu_items(appbuilder.menu.get_list()):
        label = item.label or item.name
        views.setdefault(item.name, label)
        if item.baseview is not None:
            views.setdefault(item.baseview.class_permission_name, label)
            model = _model_of(item.baseview)
            if model is not None:
                by_model.setdefault(model, label)
    actions: dict[tuple[str, str], Any] = {}
    for view in appbuilder.baseviews:
        name = view.class_permission_name
        for action_name, action in (getattr(view, "actions", None) or {}).items():
            actions[(action_name, name)] = action.text
        if name in views:
            continue
        label = labelled.get(type(view)) or BUILTIN_VIEW_LABELS.get(name)
        model = _model_of(view)
        if label is None and model in by_model:
            label = by_model[model]
        if label is None:
            label = getattr(view, "list_title", None) or getattr(view, "title", None)
        if label:
            views[name] = label
    audited: dict[str, Any] = {}
    for mapper in Model.registry.mappers:
        cls = mapper.class_
        name = audited_name(cls)
        if name and name not in audited:
            audited[name] = getattr(cls, "__crm_label__", None) or by_model.get(cls)
    return {"roles": roles, "views": views, "actions": actions, "audited": audited}


def _menu_items(items: Iterable[Any]) -> Iterator[Any]:
    for item in items:
        yield item
        yield from _menu_items(item.childs or ())


def _model_of(view: Any) -> Any:
    datamodel = getattr(view, "datamodel", None)
    return getattr(datamodel, "obj", None)
