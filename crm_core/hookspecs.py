# mypy: disable-error-code="empty-body"
"""Every hook a plugin may implement.

Declarative hooks (``register_*``) are called once per app while it is built; each
implementation returns a list of spec dataclasses from :mod:`crm_core.specs`, and the core
records which plugin returned what. Behavioural hooks are called at run time, each implementation
isolated: an exception in one plugin is logged against that plugin and never reaches the user or
another plugin. Hooks of a disabled plugin are not called.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any

import pluggy

if TYPE_CHECKING:
    from flask import Flask

    from .specs import (
        ActionSpec,
        ApiSpec,
        Change,
        ChannelSpec,
        Event,
        EventTypeSpec,
        ImportSpec,
        JobSpec,
        MenuLinkSpec,
        PanelSpec,
        PicklistSpec,
        RoleSpec,
        SettingSpec,
        TimelineEntry,
        ViewSpec,
    )

hookspec = pluggy.HookspecMarker("crm")


@hookspec
def register_models() -> list[type]:
    """Return the SQLAlchemy model classes the plugin owns (subclasses of
    ``flask_appbuilder.Model``).

    Called once while the app is built. The classes' tables must start with the manifest's
    ``table_prefix`` and be created by the plugin's own migrations.
    """


@hookspec
def register_views() -> list[ViewSpec]:
    """Return the HTML views (Flask-AppBuilder ``ModelView``/``BaseView`` classes) to register.

    Called once while the app is built, for every installed plugin, enabled or not: views of a
    disabled plugin answer 404 and leave the menu until the plugin is enabled again.
    """


@hookspec
def register_apis() -> list[ApiSpec]:
    """Return the REST APIs (``ModelRestApi``/``BaseApi`` classes) to serve under ``/api/v1``.

    Called once while the app is built. A disabled plugin's APIs answer 404 and vanish from
    ``/api/v1/_openapi``.
    """


@hookspec
def register_menu() -> list[MenuLinkSpec]:
    """Return plain menu links (to endpoints or URLs) that belong to no view.

    Called once while the app is built.
    """


@hookspec
def register_roles() -> list[RoleSpec]:
    """Return default roles and their permission sets.

    Applied by ``crm upgrade``; permissions named for views of several plugins are merged.
    """


@hookspec
def register_jobs() -> list[JobSpec]:
    """Return scheduled jobs; ``crm scheduler`` runs those of enabled plugins and logs each run."""


@hookspec
def register_commands() -> list[Any]:
    """Return ``click`` commands or groups to add under the ``crm`` command."""


@hookspec
def register_settings() -> list[SettingSpec]:
    """Return the settings this plugin reads, with defaults, for the Settings screen."""


@hookspec
def register_config_sections() -> list[Any]:
    """Return ``crm_core.lowcode.bundle.ConfigSection``s: the parts of this plugin's
    configuration that ``crm config export`` writes and ``crm config import`` applies."""


@hookspec
def register_picklists() -> list[PicklistSpec]:
    """Return the picklists this plugin uses, with their default values."""


@hookspec
def register_importers() -> list[ImportSpec]:
    """Return the models whose records admins may import from CSV and XLSX files (``crm
    import`` and Data → Import), with the keys a re-import matches existing records by."""


@hookspec
def register_notification_channels() -> list[ChannelSpec]:
    """Return notification channels (``ChannelSpec``) users may choose for their
    notifications besides the inbox; the core registers e-mail and the WeChat Work, DingTalk
    and Feishu robots this way. Called once while the app is built; a channel of a disabled
    plugin is not offered and its pending deliveries wait until it is enabled again."""


@hookspec
def register_event_types() -> list[EventTypeSpec]:
    """Return the domain event types this plugin emits, so rules and webhooks can offer them."""


@hookspec
def register_metrics() -> list[Any]:
    """Return metric definitions (KPIs) this plugin computes."""


@hookspec
def register_automation_actions() -> list[ActionSpec]:
    """Return actions (``crm_core.ActionSpec``) automation rules may take besides the core's
    (set a field, assign, create a task, notify, e-mail, webhook, start an approval). Called
    once while the app is built; an action of a disabled plugin is not offered, and rules
    using it fail their runs (logged, retried) until the plugin is enabled again."""


@hookspec
def register_connectors() -> list[Any]:
    """Return integration connectors (ERP, e-commerce, messaging) this plugin provides."""


@hookspec
def register_customer_panels() -> list[PanelSpec]:
    """Return sections of the customer 360° page, each rendered when the page is shown."""


@hookspec
def customer_timeline(customer: Any, since: datetime | None, limit: int) -> list[TimelineEntry]:
    """Return up to ``limit`` timeline entries for ``customer``, newest first, not older than
    ``since`` when given.

    Called on every 360° page view; the core merges every plugin's entries by time. Query with a
    ``LIMIT`` on an indexed column: never load a customer's whole history.
    """


@hookspec
def export_personal_data(customer: Any, contact: Any) -> dict[str, list[dict[str, Any]]]:
    """Return the plugin's records about one person, for the person's data export (PIPL).

    Called when someone exports the personal data of a person customer (``contact`` is
    ``None``) or of one contact of ``customer``. Return ``{section: [record, ...]}`` with each
    record as a dict of JSON values (dates as ISO 8601 strings), values as stored: never
    masked, because the document is the person's own data. Sections appear in the export under
    the plugin's name. Query what belongs to that person only (by ``customer.id`` or
    ``contact.id``); record rules do not narrow these queries. An exception is recorded
    against the plugin and the export goes on without its sections.
    """


@hookspec
def merge_records(model: str, survivor: Any, loser: Any) -> int | None:
    """Move the plugin's records that belong to ``loser`` over to ``survivor``.

    Called while two records are merged (``model`` is ``"customer"``: duplicate customers),
    inside the merging transaction, after the core moved its own records and before the
    survivor takes its chosen values; ``loser`` is already archived. Change the foreign keys
    with ORM writes in the current session (``crm_core.session()``) and do not commit: each
    moved record gets its audit entry, also for models without ``__crm_event__``. Record rules
    do not narrow these queries: every record of the loser must move. Return how many records
    were moved (or ``None``). Every enabled plugin is called; an exception aborts the whole
    merge with a message naming the plugin, and nothing is merged.
    """


@hookspec
def app_configured(app: Flask) -> None:
    """Called once the app is fully built, for every loaded plugin whatever its state.

    An exception is recorded against the plugin (Modules page) and the app starts anyway.
    """


@hookspec
def validate_change(change: Change) -> str | None:
    """Called before a write is committed, for every created, updated or deleted business record.

    Return a message (translated for the user) to veto the write, or ``None`` to let it pass.
    Every implementation is called; the first veto wins. Do not write to the database here.
    """


@hookspec
def on_event(event: Event) -> None:
    """Called after commit, once per implementation, for every domain event in the outbox.

    Runs outside the user's transaction; an exception is logged against this plugin and the
    delivery is retried with back-off, without blocking other plugins' deliveries. Must be
    idempotent: a delivery may repeat after a crash.
    """
