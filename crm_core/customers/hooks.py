"""The core's customer features, registered through the same hooks as any plugin."""

from __future__ import annotations

from flask_babel import lazy_gettext as _l
from flask_babel import lazy_pgettext

from ..hookimpl import hookimpl
from ..specs import (
    ApiSpec,
    EventTypeSpec,
    ImportSpec,
    JobSpec,
    PicklistSpec,
    RoleSpec,
    RuleSpec,
    SettingSpec,
    ViewSpec,
)
from . import pool
from .api import ContactApi, CustomerApi, TagApi
from .imports import CONTACT_IMPORT, CUSTOMER_IMPORT
from .models import Contact, Customer, Tag
from .page import CustomerPageView
from .views import ContactView, CustomerPoolView, CustomerView, TagView

CATEGORY = "Customers"


@hookimpl
def register_models() -> list[type]:
    return [Customer, Contact, Tag]


@hookimpl
def register_importers() -> list[ImportSpec]:
    return [CUSTOMER_IMPORT, CONTACT_IMPORT]


@hookimpl
def register_views() -> list[ViewSpec]:
    menu = {"category": CATEGORY, "category_label": _l("Customers"), "category_icon": "fa-users"}
    return [
        ViewSpec(CustomerView, "Customers", _l("Customers"), icon="fa-building", **menu),
        ViewSpec(CustomerPoolView, "Shared pool", _l("Shared pool"), icon="fa-water", **menu),
        ViewSpec(ContactView, "Contacts", _l("Contacts"), icon="fa-address-book", **menu),
        ViewSpec(TagView, "Tags", _l("Tags"), icon="fa-tags", **menu),
        ViewSpec(CustomerPageView, "Customer 360", _l("Customer page")),
    ]


@hookimpl
def register_apis() -> list[ApiSpec]:
    return [ApiSpec(CustomerApi), ApiSpec(ContactApi), ApiSpec(TagApi)]


@hookimpl
def register_settings() -> list[SettingSpec]:
    return [
        SettingSpec(
            pool.RECLAIM_DAYS,
            30,
            "int",
            label=_l("Days without follow-up before a customer returns to the shared pool"),
            help=_l("0 turns automatic return off."),
        )
    ]


@hookimpl
def register_jobs() -> list[JobSpec]:
    return [
        JobSpec(
            "core.pool_reclaim",
            pool.reclaim_idle,
            "cron",
            {"hour": 2, "minute": 0},
            title="Return idle customers to the shared pool",
        )
    ]


@hookimpl
def register_event_types() -> list[EventTypeSpec]:
    return [
        EventTypeSpec(f"customer.{verb}", label)
        for verb, label in (
            ("created", _l("Customer created")),
            ("updated", _l("Customer updated")),
            ("archived", _l("Customer archived")),
            ("claimed", _l("Customer claimed from the pool")),
            ("released", _l("Customer returned to the pool")),
        )
    ] + [
        EventTypeSpec("contact.created", _l("Contact created")),
        EventTypeSpec("contact.updated", _l("Contact updated")),
    ]


def _crud(view: str, *perms: str) -> tuple[tuple[str, str], ...]:
    return tuple((f"can_{p}", view) for p in perms)


@hookimpl
def register_roles() -> list[RoleSpec]:
    """The core's default roles (Admin is Flask-AppBuilder's own and sees everything)."""
    menus = tuple(
        ("menu_access", m) for m in ("Customers", "Shared pool", "Contacts", "Follow-ups", "Tags")
    )
    api_rw = ("get", "post", "put", "info")
    read = (
        _crud("CustomerView", "list", "show")
        + _crud("CustomerPageView", "show")
        + _crud("CustomerApi", "get", "info")
        + _crud("ContactApi", "get", "info")
        + _crud("ActivityApi", "get", "info")
        + _crud("TagApi", "get", "info")
        + _crud("ContactView", "list", "show")
        + _crud("ActivityView", "list", "show")
        + _crud("TagView", "list", "show")
        + tuple(m for m in menus if m[1] != "Shared pool")
    )
    activities_rw = _crud("ActivityApi", *api_rw) + _crud(
        "ActivityView", "list", "show", "add", "edit"
    )
    reveal = (("can_reveal", "Sensitive fields"),)  # masked values, shown one by one, audited
    # Consents (PIPL): read by sales, service and marketing, recorded and withdrawn by sales.
    consents_read = (
        _crud("ConsentView", "list", "show")
        + _crud("ConsentApi", "get", "info")
        + (("menu_access", "Consents"),)
    )
    consents_rw = (
        consents_read
        + _crud("ConsentView", "add")
        + (("withdraw", "ConsentView"),)
        + _crud("ConsentApi", "post", "withdraw")
    )
    rep = (
        read
        + _crud("CustomerView", "add", "edit")
        + _crud("CustomerPageView", "claim", "release")
        + _crud("CustomerApi", "post", "put", "claim", "release")
        + _crud("ContactApi", *api_rw)
        + _crud("CustomerPoolView", "list", "show")
        + _crud("ContactView", "add", "edit")
        + activities_rw
        + reveal
        + consents_rw
        + (("menu_access", "Shared pool"),)
    )
    manager = (
        rep
        + _crud("CustomerView", "delete")
        + _crud("ContactView", "delete")
        + _crud("ActivityView", "delete")
        + tuple(("archive", v) for v in ("CustomerView", "ContactView", "ActivityView"))
        + _crud("CustomerApi", "delete")
        + _crud("ContactApi", "delete")
        + _crud("ActivityApi", "delete")
        + _crud("TagView", "add", "edit")
        + _crud("TagApi", "post", "put")
        + (("can_export", "Personal data"),)  # a person's data export (PIPL), audited
    )
    # Marketing reads consents: a campaign may only reach people who agreed to it.
    marketing = (
        read + consents_read + _crud("TagView", "add", "edit") + _crud("TagApi", "post", "put")
    )
    integration = (
        _crud("CustomerApi", *api_rw, "delete", "claim", "release")
        + _crud("ContactApi", *api_rw, "delete")
        + _crud("ActivityApi", *api_rw, "delete")
        + _crud("TagApi", *api_rw)
        + _crud("ConsentApi", *api_rw, "delete", "withdraw")
        + (("can_unmasked", "Sensitive fields"),)  # systems read what they synchronise
    )
    read_all = (RuleSpec("*", "all", "none", pool=True),)
    return [
        RoleSpec(
            "Sales Manager",
            manager,
            (RuleSpec("*", "tree", "tree", pool=True),),
            label=lazy_pgettext("role", "Sales Manager"),
        ),
        RoleSpec(
            "Sales Rep",
            rep,
            (RuleSpec("*", "own", "own", pool=True),),
            label=lazy_pgettext("role", "Sales Rep"),
        ),
        RoleSpec(
            "Service Agent",
            read + activities_rw + reveal + consents_read,
            (RuleSpec("*", "all", "none", pool=True), RuleSpec("Activity", "all", "own")),
            label=lazy_pgettext("role", "Service Agent"),
        ),
        RoleSpec("Marketing", marketing, read_all, label=lazy_pgettext("role", "Marketing")),
        RoleSpec("Analyst", read, read_all, label=lazy_pgettext("role", "Analyst")),
        RoleSpec("Read-only", read, read_all, label=lazy_pgettext("role", "Read-only")),
        RoleSpec(
            "Integration",
            integration,
            (RuleSpec("*", "all", "all", pool=True),),
            label=lazy_pgettext("role", "Integration (API)"),
        ),
    ]


@hookimpl
def register_picklists() -> list[PicklistSpec]:
    """The customer's enumerations, with the values Chinese companies expect."""
    return [
        PicklistSpec(
            "customer_source",
            "客户来源",
            "Customer source",
            (
                ("官网", "官网", "Website"),
                ("展会", "展会", "Trade fair"),
                ("电话营销", "电话营销", "Telemarketing"),
                ("老客户介绍", "老客户介绍", "Referral"),
                ("百度推广", "百度推广", "Baidu ads"),
                ("微信", "微信", "WeChat"),
                ("其他", "其他", "Other"),
            ),
        ),
        PicklistSpec(
            "industry",
            "行业",
            "Industry",
            (
                ("制造业", "制造业", "Manufacturing"),
                ("批发零售", "批发零售", "Wholesale and retail"),
                ("信息技术", "信息技术", "Information technology"),
                ("金融", "金融", "Finance"),
                ("教育", "教育", "Education"),
                ("医疗", "医疗", "Healthcare"),
                ("建筑", "建筑", "Construction"),
                ("物流", "物流", "Logistics"),
                ("其他", "其他", "Other"),
            ),
        ),
        PicklistSpec(
            "customer_tier",
            "客户等级",
            "Customer tier",
            (
                ("VIP", "VIP", "VIP", "red"),
                ("A", "A 级", "Tier A", "orange"),
                ("B", "B 级", "Tier B", "blue"),
                ("C", "C 级", "Tier C", "gray"),
            ),
        ),
        PicklistSpec(
            "lifecycle_stage",
            "生命周期阶段",
            "Lifecycle stage",
            (
                ("prospect", "潜在客户", "Prospect"),
                ("new", "新客户", "New"),
                ("active", "活跃客户", "Active"),
                ("dormant", "沉睡客户", "Dormant"),
                ("churned", "流失客户", "Churned"),
                ("won_back", "挽回客户", "Won back"),
            ),
        ),
    ]
