"""Screens for customers, contacts and tags."""

from __future__ import annotations

from flask import redirect, url_for
from flask_appbuilder import expose, has_access
from flask_appbuilder.fieldwidgets import Select2Widget
from flask_appbuilder.models.sqla.filters import FilterEqual
from flask_babel import lazy_gettext as _l
from sqlalchemy import select
from wtforms import SelectField, StringField
from wtforms.validators import Length, Optional, ValidationError

from ..db import session
from ..errors import FieldError
from ..org.display import display_user
from ..web.crud import CrmInterface, CrmModelView, default_owner
from ..web.display import display_datetime
from .models import Contact, Customer, Tag
from .search import CONTACT_PREFIX_SEARCH, CUSTOMER_PREFIX_SEARCH
from .validation import display_phone, normalise_email, normalise_phone


class PhoneField:
    """Form validator with the model's phone rules, so the form keeps what the user typed."""

    def __call__(self, form, field):  # type: ignore[no-untyped-def]
        try:
            normalise_phone(field.name, field.data)
        except FieldError as exc:
            raise ValidationError(" ".join(exc.messages[field.name])) from None


class EmailField:
    """Form validator with the model's e-mail rules."""

    def __call__(self, form, field):  # type: ignore[no-untyped-def]
        try:
            normalise_email(field.name, field.data)
        except FieldError as exc:
            raise ValidationError(" ".join(exc.messages[field.name])) from None


CUSTOMER_LABELS = {
    "code": _l("Code"),
    "name": _l("Name"),
    "kind": _l("Type"),
    "phone": _l("Phone"),
    "email": _l("E-mail"),
    "website": _l("Website"),
    "province": _l("Province"),
    "city": _l("City"),
    "district": _l("District"),
    "address": _l("Address"),
    "industry": _l("Industry"),
    "source": _l("Source"),
    "tier": _l("Tier"),
    "lifecycle_stage": _l("Lifecycle stage"),
    "uscc": _l("Unified social credit code"),
    "credit_limit": _l("Credit limit"),
    "owner": _l("Owner"),
    "team": _l("Team"),
    "tags": _l("Tags"),
    "notes": _l("Notes"),
    "active": _l("Active"),
    "updated_at": _l("Updated"),
    "created_at": _l("Created"),
    "last_activity_at": _l("Last follow-up"),
    "pooled_at": _l("In pool since"),
}

CONTACT_LABELS = {
    "customer": _l("Customer"),
    "name": _l("Name"),
    "title": _l("Job title"),
    "role": _l("Role"),
    "mobile": _l("Mobile"),
    "phone": _l("Phone"),
    "email": _l("E-mail"),
    "wechat": _l("WeChat"),
    "birthday": _l("Birthday"),
    "notes": _l("Notes"),
}

_customer_fields = [
    "code",
    "name",
    "kind",
    "phone",
    "email",
    "website",
    "province",
    "city",
    "district",
    "address",
    "industry",
    "source",
    "tier",
    "lifecycle_stage",
    "uscc",
    "credit_limit",
    "owner",
    "team",
    "tags",
    "notes",
]


class UniqueCode:
    """Form validator: the customer code, as it will be stored, is not another customer's."""

    def __call__(self, form, field):  # type: ignore[no-untyped-def]
        code = (field.data or "").strip().upper()
        if not code:
            return
        query = select(Customer.id).where(Customer.code == code)
        if getattr(form, "_id", None) is not None:
            query = query.where(Customer.id != int(form._id))
        if session().scalar(query.limit(1)) is not None:
            raise ValidationError(
                str(_l("%(value)s is already used by another record", value=code))
            )


def _code_field() -> StringField:
    return StringField(
        _l("Code"),
        validators=[Optional(), Length(max=32), UniqueCode()],
        description=_l("Unique; left empty, one is generated"),
    )


KIND_LABELS = {"company": _l("Company"), "person": _l("Person")}


def _kind_field() -> SelectField:
    return SelectField(
        _l("Type"),
        choices=list(KIND_LABELS.items()),
        default="company",
        widget=Select2Widget(),
    )


class ShowOn360:
    """A customer's page is its 360° page: a list's show links lead there."""

    @expose("/show/<pk>")
    @has_access
    def show(self, pk):  # type: ignore[no-untyped-def]
        return redirect(url_for("CustomerPageView.show", pk=pk))


class CustomerView(ShowOn360, CrmModelView):
    """Customers (客户): list, search, filters, show, add, edit, archive."""

    datamodel = CrmInterface(Customer, prefix_search=CUSTOMER_PREFIX_SEARCH)
    route_base = "/customers"
    list_title = _l("Customers")
    show_title = _l("Customer")
    add_title = _l("Add customer")
    edit_title = _l("Edit customer")
    label_columns = CUSTOMER_LABELS
    list_columns = ["code", "name", "phone", "city", "industry", "owner", "updated_at"]
    search_columns = [
        "code",
        "name",
        "phone",
        "email",
        "province",
        "city",
        "industry",
        "source",
        "tier",
        "owner",
        "team",
        "tags",
    ]
    # The owner is not a form field: a new customer belongs to its creator (``pre_add``), and
    # an owner changes hands by claiming, releasing or reassigning, each checked by the
    # record rules.
    add_columns = edit_columns = [f for f in _customer_fields if f != "owner"]
    show_columns = _customer_fields + ["last_activity_at", "created_at", "updated_at"]
    order_columns = ["code", "name", "city", "updated_at"]
    base_order = ("updated_at", "desc")
    anchor_orders = (("name", "asc"),)  # deep pages by name jump from stored anchors
    base_filters = [["active", FilterEqual, True]]
    validators_columns = {"phone": [PhoneField()], "email": [EmailField()]}
    add_form_extra_fields = {"kind": _kind_field(), "code": _code_field()}
    edit_form_extra_fields = {"kind": _kind_field(), "code": _code_field()}
    formatters_columns = {
        "kind": lambda kind: KIND_LABELS.get(kind, kind),
        "phone": display_phone,
        "owner": display_user,
        "updated_at": display_datetime,
    }
    description_columns = {
        "phone": _l("Mobile or landline; +country code for numbers outside China"),
    }

    def pre_add(self, item: Customer) -> None:
        default_owner(item)


class CustomerPoolView(ShowOn360, CrmModelView):
    """The shared pool (公海): active customers without an owner."""

    datamodel = CrmInterface(Customer, prefix_search=CUSTOMER_PREFIX_SEARCH)
    route_base = "/pool"
    list_title = _l("Shared pool")
    show_title = _l("Customer")
    label_columns = CUSTOMER_LABELS
    list_columns = ["code", "name", "city", "industry", "source", "pooled_at"]
    search_columns = ["code", "name", "city", "industry", "source"]
    base_permissions = ["can_list", "can_show"]
    crm_layout = False  # the pool's own columns; customers' layouts are for CustomerView
    base_filters = [["active", FilterEqual, True], ["owner_id", FilterEqual, None]]
    base_order = ("id", "desc")
    show_columns = _customer_fields
    formatters_columns = {"pooled_at": display_datetime}


class ContactView(CrmModelView):
    """Contacts (联系人) at customers."""

    datamodel = CrmInterface(Contact, prefix_search=CONTACT_PREFIX_SEARCH)
    route_base = "/contacts"
    list_title = _l("Contacts")
    show_title = _l("Contact")
    add_title = _l("Add contact")
    edit_title = _l("Edit contact")
    label_columns = CONTACT_LABELS
    _fields = [
        "customer",
        "name",
        "title",
        "role",
        "mobile",
        "phone",
        "email",
        "wechat",
        "birthday",
        "notes",
    ]
    list_columns = ["name", "customer", "title", "mobile", "email"]
    search_columns = ["name", "customer", "mobile", "email", "title"]
    add_columns = edit_columns = show_columns = _fields
    base_filters = [["active", FilterEqual, True]]
    base_order = ("id", "desc")
    validators_columns = {
        "mobile": [PhoneField()],
        "phone": [PhoneField()],
        "email": [EmailField()],
    }
    formatters_columns = {"mobile": display_phone, "phone": display_phone}


class TagView(CrmModelView):
    """Tags (标签)."""

    datamodel = CrmInterface(Tag)
    route_base = "/tags"
    list_title = _l("Tags")
    show_title = _l("Tag")
    add_title = _l("Add tag")
    edit_title = _l("Edit tag")
    label_columns = {"name": _l("Name"), "color": _l("Colour")}
    list_columns = add_columns = edit_columns = show_columns = ["name", "color"]
    search_columns = ["name"]
