"""The core's automation actions: set a field, assign an owner, create a task, notify users,
send an e-mail, call a webhook, start an approval. Registered through
``register_automation_actions`` like any plugin's.

Database actions write in the rule's transaction; the e-mail and the webhook go out while the
run is under way, so a run that fails after them and is retried sends them again (at least
once). Put them last in a rule.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import urllib.error
import urllib.request
from collections.abc import Callable
from datetime import timedelta
from decimal import Decimal
from typing import Any
from urllib.parse import urlparse

from flask_appbuilder.security.sqla.models import User
from flask_babel import lazy_gettext as _l
from sqlalchemy import inspect, select
from sqlalchemy.orm import Session
from sqlalchemy.types import Integer

from ...activities.models import ACTIVITY_KINDS, Activity
from ...customers.models import Customer
from ...db import session as current_session
from ...errors import FieldError
from ...lowcode import conditions as cond
from ...lowcode.fields import custom_column
from ...lowcode.live import PREFIX
from ...org.display import display_user
from ...specs import ActionParam, ActionSpec
from ..approvals import engine as approvals
from ..approvals.models import ApprovalProcess
from ..approvals.steps import managers_of
from ..assignment import engine as assignment
from ..assignment.models import AssignmentRule
from ..notifications.channels import DeliveryError, send_mail
from ..notifications.config import channel_setting
from ..notifications.notify import notify
from .actions import Context, record_url, record_values


def _action(
    name: str,
    label: Any,
    does: Callable[[Context, dict[str, str], bool], str],
    params: tuple[ActionParam, ...],
    check: Callable[[type, dict[str, str]], list[str]],
) -> ActionSpec:
    """An action whose one function does it (``write``) and, without writing, predicts it."""
    return ActionSpec(
        name,
        label,
        run=lambda ctx, p: does(ctx, p, True),
        predict=lambda ctx, p: does(ctx, p, False),
        params=params,
        check=check,
    )


#: Who ``to`` may name besides user names (and, for e-mails, addresses).
PEOPLE_HELP = _l("owner, manager (the owner's manager) or user names, comma-separated")

# --------------------------------------------------------------------------- people


def _parts(text: str | None, default: str = "owner") -> list[str]:
    return [p.strip() for p in (text or default).split(",") if p.strip()]


def _named_users(session: Session, names: list[str]) -> dict[str, User]:
    if not names:
        return {}
    rows = session.scalars(select(User).where(User.username.in_(names)))
    return {u.username: u for u in rows}


def _people(ctx: Context, text: str | None) -> list[User]:
    """The users ``text`` names for the record: its owner (as an earlier action of the run
    left it, also in a dry run), the owner's manager, user names."""
    owner_id = ctx.made.get("owner_id", getattr(ctx.record, "owner_id", None))
    out: list[User] = []
    parts = _parts(text)
    named = _named_users(ctx.session, [p for p in parts if p not in ("owner", "manager")])
    for part in parts:
        if part == "owner":
            found = [ctx.session.get(User, owner_id)] if owner_id else []
        elif part == "manager":
            found = list(managers_of(ctx.session, owner_id))
        else:
            found = [named[part]] if part in named else []
        out += [u for u in found if u is not None and u not in out]
    return out


def _check_people(session: Session, text: str | None, addresses: bool = False) -> list[str]:
    parts = [p for p in _parts(text) if p not in ("owner", "manager", "record")]
    if addresses:
        parts = [p for p in parts if "@" not in p]
    known = _named_users(session, parts)
    return [str(_l("there is no user %(name)s.", name=p)) for p in parts if p not in known]


def _names(users: list[User]) -> str:
    return ", ".join(display_user(u) for u in users) or str(_l("nobody"))


# --------------------------------------------------------------------------- set a field


def _typed(model: type, field: str, raw: str) -> Any:
    kind = cond.field_kind(model, field)
    if raw == "":
        return None
    if field.startswith(PREFIX):
        return raw  # custom values are checked and stored in their form on flush
    try:
        value = cond.coerce(kind or "text", raw)
    except ValueError:
        raise FieldError({field: [cond.not_a_value(raw, field)]}) from None
    column: Any = inspect(model).columns.get(field)
    if isinstance(value, Decimal) and column is not None and isinstance(column.type, Integer):
        return int(value)
    return value


def _check_field(model: type, params: dict[str, str]) -> list[str]:
    field = params.get("field", "")
    if not field:
        return []
    if "." in field or field in ("id", "created_at", "updated_at", "version"):
        return [str(_l("%(field)s cannot be set by a rule.", field=field))]
    kind = cond.field_kind(model, field)
    if kind is None:
        return [str(_l("There is no field %(field)s.", field=field))]
    value = params.get("value", "")
    if "{" in value or value == "" or field.startswith(PREFIX):
        return []
    try:
        cond.coerce(kind, value)
    except ValueError:
        return [cond.not_a_value(value, field)]
    return []


def _set(ctx: Context, params: dict[str, str], write: bool) -> str:
    record = ctx.record
    field = params["field"]
    raw = ctx.render(params.get("value", ""))
    before = cond.value_of(record, field)
    value = _typed(type(record), field, raw)
    if write:
        if field.startswith(PREFIX):
            column = custom_column(type(record)) or "custom"
            data = dict(getattr(record, column) or {})
            if value is None:
                data.pop(field[len(PREFIX) :], None)
            else:
                data[field[len(PREFIX) :]] = value
            setattr(record, column, data)
        else:
            assignment.set_link(ctx.session, record, field, value)
    return str(
        _l(
            "%(field)s: %(before)s → %(after)s",
            field=field,
            before=_shown(before),
            after=_shown(value),
        )
    )


def _shown(value: Any) -> str:
    return "—" if value is None or value == "" else str(value)


SET_FIELD = _action(
    "set_field",
    _l("Set a field"),
    _set,
    params=(
        ActionParam("field", _l("Field"), _l("e.g. tier or custom__grade"), required=True),
        ActionParam("value", _l("Value"), _l("empty clears it; may use {{ record.city }}")),
    ),
    check=_check_field,
)


# --------------------------------------------------------------------------- assign


def _rule(session: Session, model: type, name: str | None) -> AssignmentRule | None:
    if not name:
        return None
    found = session.scalar(
        select(AssignmentRule).where(
            AssignmentRule.name == name, AssignmentRule.model == model.__name__
        )
    )
    if found is None:
        raise FieldError({"rule": [str(_l("There is no assignment rule %(name)s.", name=name))]})
    return found


def _assign(ctx: Context, params: dict[str, str], write: bool) -> str:
    rule = _rule(ctx.session, type(ctx.record), params.get("rule"))
    if write:
        result = assignment.assign(ctx.session, ctx.record, rule=rule, now=ctx.now)
    else:
        result = assignment.preview(ctx.session, ctx.record, rule, now=ctx.now)
    if result.assigned:
        ctx.made["owner_id"] = result.user_id
        return str(_l("Owner: %(user)s (%(rule)s)", user=result.user_name, rule=result.rule_name))
    return result.reason


def _check_assign(model: type, params: dict[str, str]) -> list[str]:
    if not hasattr(model, "owner_id"):
        return [str(_l("This record type has no owner."))]
    try:
        _rule(current_session(), model, params.get("rule"))
    except FieldError as exc:
        return [m for msgs in exc.messages.values() for m in msgs]
    return []


ASSIGN = _action(
    "assign",
    _l("Assign an owner"),
    _assign,
    params=(
        ActionParam(
            "rule",
            _l("Assignment rule"),
            _l("its name; empty: the first matching assignment rule"),
        ),
    ),
    check=_check_assign,
)


# --------------------------------------------------------------------------- create a task


def _due_days(params: dict[str, str]) -> int:
    text = (params.get("due_days") or "0").strip()
    try:
        return int(text)
    except ValueError:
        raise FieldError({"due_days": [cond.not_a_value(text, "due_days")]}) from None


def _task(ctx: Context, params: dict[str, str], write: bool) -> str:
    record = ctx.record
    subject = ctx.render(params.get("subject"))[:200]
    due = ctx.now + timedelta(days=_due_days(params))
    owners = _people(ctx, params.get("owner") or "owner")
    owner = owners[0] if owners else None
    kind = params.get("kind") or "task"
    if write:
        customer_id = (
            record.id if isinstance(record, Customer) else getattr(record, "customer_id", None)
        )
        task = Activity(
            kind=kind,
            subject=subject,
            body=ctx.render(params.get("body")) or None,
            customer_id=customer_id,
            owner_id=owner.id if owner else None,
            due_at=due,
            done=False,
            ref_model=None if isinstance(record, Customer) else type(record).__name__,
            ref_id=None if isinstance(record, Customer) else record.id,
        )
        ctx.session.add(task)
        ctx.made["task"] = task
    return str(
        _l(
            "Task %(subject)s for %(owner)s, due %(due)s",
            subject=subject,
            owner=_names([owner] if owner else []),
            due=due.strftime("%Y-%m-%d %H:%M"),
        )
    )


def _check_task(model: type, params: dict[str, str]) -> list[str]:
    out = []
    if (params.get("kind") or "task") not in ACTIVITY_KINDS:
        out.append(str(_l("kind is one of %(kinds)s.", kinds=", ".join(ACTIVITY_KINDS))))
    try:
        _due_days(params)
    except FieldError:
        out.append(str(_l("due_days is a whole number of days.")))
    return out + _check_people(current_session(), params.get("owner"))


CREATE_TASK = _action(
    "create_task",
    _l("Create a task"),
    _task,
    params=(
        ActionParam("subject", _l("Subject"), _l("may use {{ record.name }}"), required=True),
        ActionParam("due_days", _l("Due in days"), _l("e.g. 2; 0: today")),
        ActionParam("owner", _l("For"), _l("owner (default), manager or a user name")),
        ActionParam("kind", _l("Kind"), _l("task (default), call, visit, meeting…")),
        ActionParam("body", _l("Details")),
    ),
    check=_check_task,
)


# --------------------------------------------------------------------------- notify


def _notify(ctx: Context, params: dict[str, str], write: bool) -> str:
    users = _people(ctx, params.get("to"))
    title = ctx.render(params.get("title"))
    if write and users:
        notify(
            ctx.session,
            users,
            title,
            ctx.render(params.get("body")),
            url=record_url(ctx.record),
            kind="automation",
            source=str(ctx.rule)[:80],
            record=ctx.record,
        )
    return str(_l("Notify %(users)s: %(title)s", users=_names(users), title=title))


NOTIFY = _action(
    "notify",
    _l("Notify users"),
    _notify,
    params=(
        ActionParam("to", _l("To"), PEOPLE_HELP),
        ActionParam("title", _l("Title"), _l("may use {{ record.name }}"), required=True),
        ActionParam("body", _l("Text")),
    ),
    check=lambda _model, p: _check_people(current_session(), p.get("to")),
)


# --------------------------------------------------------------------------- e-mail


def _addresses(ctx: Context, text: str | None) -> list[str]:
    out: list[str] = []
    for part in _parts(text, "record"):
        if "@" in part:
            found = [part]
        elif part == "record":
            found = [str(getattr(ctx.record, "email", None) or "")]
        else:
            found = [u.email for u in _people(ctx, part)]
        out += [a for a in found if a and a not in out]
    return out


def _email(ctx: Context, params: dict[str, str], write: bool) -> str:
    to = _addresses(ctx, params.get("to"))
    subject = " ".join(ctx.render(params.get("subject")).split())  # a header is one line
    if write:
        if not to:
            raise FieldError({"to": [str(_l("The e-mail has no recipient address."))]})
        send_mail(to, subject, ctx.render(params.get("body")) or subject)
    return str(_l("E-mail to %(to)s: %(subject)s", to=", ".join(to) or "—", subject=subject))


def _check_email(model: type, params: dict[str, str]) -> list[str]:
    out = _check_people(current_session(), params.get("to") or "record", addresses=True)
    if "record" in _parts(params.get("to"), "record") and "email" not in inspect(model).columns:
        out.append(str(_l("this record type has no e-mail address; name the recipients.")))
    if not channel_setting("smtp_host"):
        out.append(str(_l("no SMTP server is set up (Notification channels).")))
    return out


EMAIL = _action(
    "email",
    _l("Send an e-mail"),
    _email,
    params=(
        ActionParam(
            "to",
            _l("To"),
            _l("record (its e-mail, the default), owner, manager, user names or addresses"),
        ),
        ActionParam("subject", _l("Subject"), _l("may use {{ record.name }}"), required=True),
        ActionParam("body", _l("Text"), _l("may use {{ record.name }}")),
    ),
    check=_check_email,
)


# --------------------------------------------------------------------------- webhook

WEBHOOK_TIMEOUT = 10.0
SIGNATURE_HEADER = "X-CRM-Signature"


def _payload(ctx: Context) -> dict[str, Any]:
    return {
        "rule": ctx.rule.name,
        "model": type(ctx.record).__name__,
        "record": record_values(ctx.record),
        "event": {"id": ctx.event.id, "type": ctx.event.type} if ctx.event else None,
        "at": ctx.now.isoformat(),
    }


def _webhook(ctx: Context, params: dict[str, str], write: bool) -> str:
    url = params["url"]
    if write:
        body = json.dumps(_payload(ctx), ensure_ascii=False).encode("utf-8")
        headers = {"Content-Type": "application/json; charset=utf-8"}
        if params.get("secret"):
            digest = hmac.new(params["secret"].encode(), body, hashlib.sha256).hexdigest()
            headers[SIGNATURE_HEADER] = f"sha256={digest}"
        request = urllib.request.Request(url, data=body, method="POST", headers=headers)
        try:
            with urllib.request.urlopen(request, timeout=WEBHOOK_TIMEOUT) as response:  # noqa: S310
                status = response.status
        except urllib.error.HTTPError as exc:
            raise DeliveryError(f"{url} answered {exc.code}") from None
        except (urllib.error.URLError, OSError) as exc:
            raise DeliveryError(f"{url}: {getattr(exc, 'reason', exc)}") from None
        return str(_l("POST to %(url)s: %(status)s", url=url, status=status))
    return str(_l("POST to %(url)s", url=url))


def _check_webhook(_model: type, params: dict[str, str]) -> list[str]:
    parsed = urlparse(params.get("url") or "")
    if params.get("url") and (parsed.scheme not in ("http", "https") or not parsed.netloc):
        return [str(_l("url is an http:// or https:// address."))]
    return []


WEBHOOK = _action(
    "webhook",
    _l("Call a webhook"),
    _webhook,
    params=(
        ActionParam(
            "url", _l("Address"), _l("https://…; the record is POSTed as JSON"), required=True
        ),
        ActionParam(
            "secret",
            _l("Signing key"),
            _l("optional: the body's HMAC-SHA256 is sent as X-CRM-Signature"),
            secret=True,
        ),
    ),
    check=_check_webhook,
)


# --------------------------------------------------------------------------- approval


def _approval(ctx: Context, params: dict[str, str], write: bool) -> str:
    name = params["process"]
    submitters = _people(ctx, params.get("submitter") or "owner")
    submitter = submitters[0] if submitters else None
    if write:
        approvals.start(ctx.session, ctx.record, name, submitter, str(ctx.rule))
        return str(_l("Submitted for the approval %(name)s", name=name))
    process = ctx.session.scalar(select(ApprovalProcess).where(ApprovalProcess.name == name))
    if process is not None and not approvals.conditions_hold(process, ctx.record):
        return str(_l("%(name)s: the record does not meet its conditions", name=name))
    return str(_l("Submitted for the approval %(name)s", name=name))


def _check_approval(model: type, params: dict[str, str]) -> list[str]:
    name = params.get("process")
    if not name:
        return []
    process = current_session().scalar(select(ApprovalProcess).where(ApprovalProcess.name == name))
    if process is None or process.model != model.__name__:
        return [str(_l("There is no active approval process %(name)s here.", name=name))]
    return _check_people(current_session(), params.get("submitter"))


START_APPROVAL = _action(
    "start_approval",
    _l("Start an approval"),
    _approval,
    params=(
        ActionParam("process", _l("Approval process"), _l("its name"), required=True),
        ActionParam("submitter", _l("Submitted by"), _l("owner (default) or a user name")),
    ),
    check=_check_approval,
)

BUILTIN = (SET_FIELD, ASSIGN, CREATE_TASK, NOTIFY, EMAIL, WEBHOOK, START_APPROVAL)
