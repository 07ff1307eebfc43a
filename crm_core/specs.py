"""Frozen dataclasses that declarative hooks return.

The core registers what these describe and remembers which plugin returned each one, so it can
hide a disabled plugin's screens, APIs, menu entries and jobs without a restart.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any


@dataclass(frozen=True)
class ViewSpec:
    """A Flask-AppBuilder view class to register, optionally with a menu entry.

    ``name`` is the menu entry's internal name (and permission view name); ``label`` is shown, and
    translated with the plugin's catalog. A view with ``category=None`` gets no menu entry; its
    label still names its permissions on the roles screen.
    """

    view: type
    name: str
    label: str = ""
    category: str | None = None
    category_label: str = ""
    icon: str = ""
    category_icon: str = ""


@dataclass(frozen=True)
class ApiSpec:
    """A Flask-AppBuilder ``ModelRestApi`` or ``BaseApi`` class, served under ``/api/v1``.

    ``label`` names it on the roles screen; an API of records needs none (it takes the label
    of the screen of the same records)."""

    api: type
    label: str = ""


@dataclass(frozen=True)
class MenuLinkSpec:
    """A plain menu link to an endpoint or URL."""

    name: str
    href: str
    label: str = ""
    category: str = ""
    icon: str = ""


@dataclass(frozen=True)
class JobSpec:
    """A scheduled job run by ``crm scheduler``.

    ``func`` is called with the Flask app as its only argument, inside an app context, and may
    return a dict of counts that the run log keeps. ``trigger`` and ``trigger_args`` are
    APScheduler's (``"interval"`` with ``{"minutes": 5}``, ``"cron"`` with ``{"hour": 2}``).
    """

    id: str
    func: Callable[..., dict[str, Any] | None]
    trigger: str
    trigger_args: dict[str, Any] = field(default_factory=dict)
    title: str = ""


@dataclass(frozen=True)
class SettingSpec:
    """A setting an admin may change, with its default and type (``int``, ``str``, ``bool``)."""

    key: str
    default: Any
    type: str = "str"
    label: str = ""
    help: str = ""


@dataclass(frozen=True)
class PicklistSpec:
    """A picklist a module uses, with its default values: ``(value, label_zh, label_en,
    colour)`` tuples (labels and colour may be left out). ``crm upgrade`` adds what is missing
    and keeps what admins changed; bind a column with ``__crm_picklists__``."""

    name: str
    label_zh: str
    label_en: str = ""
    values: tuple[tuple[str, ...], ...] = ()


@dataclass(frozen=True)
class RuleColumns:
    """How record rules find a model's records of a user (declare it as the model's
    ``__crm_record_rules__``).

    ``owner``: the column holding the owning user's id; ``team``: the column holding the team's
    id; ``parent``: a many-to-one relationship to another ruled model, whose visible records make
    this model's records visible too (a contact of a customer one may see); ``pool``: records
    with no owner form a shared pool that roles may be allowed to see.
    """

    owner: str | None = "owner_id"
    team: str | None = None
    parent: str | None = None
    pool: bool = False


@dataclass(frozen=True)
class RuleSpec:
    """A role's default record rule for one model (``"*"``: every ruled model without its own).

    Scopes: ``none``, ``own``, ``team``, ``tree`` (the team and the teams below it), ``all``.
    """

    model: str
    read: str
    write: str
    pool: bool = False


@dataclass(frozen=True)
class RoleSpec:
    """A default role with its permissions as ``(permission, view)`` pairs and its default
    record rules. ``crm upgrade`` adds what is missing and keeps what admins changed.

    ``name`` is stored and stays English (record rules, approval steps and ``--role`` use it);
    ``label`` is what screens show, translated with the plugin's catalog. Several plugins may
    add permissions to the same role; one label is enough.
    """

    name: str
    permissions: tuple[tuple[str, str], ...] = ()
    rules: tuple[RuleSpec, ...] = ()
    label: str = ""


@dataclass(frozen=True)
class EventTypeSpec:
    """A domain event type a plugin emits (``"order.confirmed"``) with a human label."""

    name: str
    label: str = ""


@dataclass(frozen=True)
class PanelSpec:
    """A section of the customer 360° page.

    ``render(customer)`` returns HTML (use ``flask.render_template``); it runs for every page view,
    so it must query only what the panel shows.
    """

    id: str
    title: str
    render: Callable[[Any], str]
    order: int = 100


@dataclass(frozen=True)
class TimelineEntry:
    """One item of a customer's merged timeline."""

    when: datetime
    kind: str
    title: str
    body: str = ""
    url: str | None = None
    source: str = ""


@dataclass(frozen=True)
class Event:
    """A domain event read back from the outbox and handed to ``on_event``."""

    id: int
    type: str
    payload: dict[str, Any]
    occurred_at: datetime


@dataclass(frozen=True)
class Change:
    """A pending write, handed to ``validate_change`` before commit.

    ``operation`` is ``"create"``, ``"update"`` or ``"delete"``; ``changes`` maps each changed
    attribute to its ``(old, new)`` values.
    """

    model: str
    operation: str
    record: Any
    changes: dict[str, tuple[Any, Any]]


@dataclass(frozen=True)
class ImportSpec:
    """A model whose records can be imported from CSV and XLSX files (``register_importers``).

    ``name`` is the model's name in URLs and on the command line (``customer``); ``keys`` are
    the columns a re-import may match existing records by (upsert); ``labels`` the translated
    column labels (a view's ``label_columns``), which the column mapping matches headers
    against in every language, together with ``synonyms`` (``{"name": ("客户名称", "公司名称")}``).
    ``exclude`` names columns never imported; ``aliases`` the words accepted for stored
    values. Foreign keys are matched by the linked record's ``code``, ``username`` or
    ``name``; custom fields come in by their labels.
    """

    name: str
    model: type
    keys: tuple[str, ...] = ()
    labels: dict[str, Any] = field(default_factory=dict)
    synonyms: dict[str, tuple[str, ...]] = field(default_factory=dict)
    exclude: tuple[str, ...] = ()
    #: Required columns the model fills itself when a file leaves them out (a customer code).
    generated: tuple[str, ...] = ()
    #: Words accepted for a column's stored values: ``{"kind": {"企业": "company"}}``.
    aliases: dict[str, dict[str, str]] = field(default_factory=dict)
    label: Any = None


@dataclass(frozen=True)
class ChannelSpec:
    """A way of delivering notifications besides the in-app inbox (``register_notification_
    channels``): e-mail, a messaging-app robot, SMS.

    ``send(message)`` delivers one :class:`crm_core.workflow.notifications.channels.Message`
    after commit, outside the user's transaction; raising makes the delivery retry with
    back-off until it gives up, and the error shows on the delivery log. ``configured()``
    says whether an admin has set the channel up; users may only pick configured channels.
    ``send=None`` marks a channel that only stores (the inbox).
    """

    name: str
    label: Any = ""
    send: Callable[[Any], None] | None = None
    configured: Callable[[], bool] = lambda: True


@dataclass(frozen=True)
class ActionParam:
    """One setting of an automation action, as the rule editor shows it: ``key = value``
    lines, ``required`` ones must be there. A ``secret`` one (a signing key) is left out of
    configuration bundles; importing a bundle keeps the value the rule has."""

    key: str
    label: Any = ""
    help: Any = ""
    required: bool = False
    secret: bool = False


@dataclass(frozen=True)
class ActionSpec:
    """An action automation rules can take (``register_automation_actions``).

    ``run(ctx, params)`` does it for one record inside the rule's transaction (write with
    ``ctx.session``, do not commit) and returns a line saying what it did; raising rolls
    the rule's run back and retries it with back-off. ``predict(ctx, params)`` says what it
    would do, writing nothing (the dry run); ``check(model, params)`` returns what is wrong
    with the settings in the admin's language. ``ctx`` is a
    :class:`crm_core.workflow.automation.actions.Context` (rule, record, event, session).
    ``models`` limits the action to those record types (class names); empty: every type.
    """

    name: str
    label: Any
    run: Callable[[Any, dict[str, str]], str]
    predict: Callable[[Any, dict[str, str]], str]
    params: tuple[ActionParam, ...] = ()
    check: Callable[[type, dict[str, str]], list[str]] | None = None
    models: tuple[str, ...] = ()
