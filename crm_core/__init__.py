"""crm_core: the framework of a plugin-based CRM on Flask-AppBuilder.

The public API for plugins is what this module exports; everything else is internal.
"""

__version__ = "0.1.0"

from .app import create_app  # noqa: E402
from .db import BusinessMixin, TimestampMixin, session, utcnow  # noqa: E402
from .errors import ConflictError, CrmError, FieldError, PermissionDenied, VetoError  # noqa: E402
from .events.outbox import emit  # noqa: E402
from .hookimpl import hookimpl  # noqa: E402
from .lowcode.column import CustomValues  # noqa: E402
from .plugins.manifest import Manifest, ManifestError  # noqa: E402
from .specs import (  # noqa: E402
    ActionParam,
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
    RuleColumns,
    RuleSpec,
    SettingSpec,
    TimelineEntry,
    ViewSpec,
)
from .web.crud import CrmInterface, CrmModelRestApi, CrmModelView  # noqa: E402

__all__ = [
    "ActionParam",
    "ActionSpec",
    "ApiSpec",
    "BusinessMixin",
    "Change",
    "ChannelSpec",
    "ConflictError",
    "CrmError",
    "CrmInterface",
    "CrmModelRestApi",
    "CrmModelView",
    "CustomValues",
    "Event",
    "EventTypeSpec",
    "FieldError",
    "ImportSpec",
    "JobSpec",
    "Manifest",
    "ManifestError",
    "MenuLinkSpec",
    "PanelSpec",
    "PicklistSpec",
    "PermissionDenied",
    "RoleSpec",
    "RuleColumns",
    "RuleSpec",
    "SettingSpec",
    "TimelineEntry",
    "TimestampMixin",
    "VetoError",
    "ViewSpec",
    "__version__",
    "create_app",
    "emit",
    "hookimpl",
    "session",
    "utcnow",
]
