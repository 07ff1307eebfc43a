"""Record rules: which records a user may read and write, enforced below every screen and API.

A model takes part by declaring ``__crm_record_rules__ = RuleColumns(...)`` (owner column, team
column, parent relationship, shared pool). Each role has, per model (or ``*`` for every model),
a read scope and a write scope (``none``, ``own``, ``team``, ``tree``, ``all``) and a pool flag
(:class:`~crm_core.security.models.RecordRule`); a user with several roles gets the widest.

- **Reads**: a ``do_orm_execute`` listener adds ``with_loader_criteria`` for every ruled model
  to every ORM ``SELECT`` of the request (lists, counts, show and edit by id, REST, related
  pickers, search, exports, reports and plugin queries alike). A hidden record is simply not
  found: 404, never 403, so its existence is not revealed.
- **Writes**: a ``before_flush`` listener checks each new, changed and deleted record of a ruled
  model: its state before the change must be writable and so must the state after (a rep can
  neither edit a colleague's customer nor hand their own to someone else). A refusal is
  :class:`~crm_core.errors.PermissionDenied` (403) and nothing is written.

Rules bind users of a request (web and API), and the user a background task acts for
(:func:`acting_as`: an import runs with the rights of who started it). Admins, ``crm``
commands, jobs and event handlers run unrestricted; code that has checked a change itself
(claiming from the pool) says so with :func:`grant`. Core ``select()`` on a connection and
``text()`` SQL never pass through the ORM event: request code must not use them on ruled
tables.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any

from flask import current_app, g, has_request_context
from flask_appbuilder import Model
from flask_babel import gettext as _
from sqlalchemy import ColumnElement, event, false, inspect, or_, select
from sqlalchemy.orm import ORMExecuteState, Session, with_loader_criteria
from werkzeug.local import LocalProxy

from ..errors import FieldError, PermissionDenied
from ..specs import RuleColumns
from . import api_keys
from .models import ANY_MODEL, SCOPES, RecordRule

_unrestricted: ContextVar[bool] = ContextVar("crm_rules_unrestricted", default=False)
_acting: ContextVar[Any] = ContextVar("crm_rules_acting_user", default=None)
_G_KEY = "_crm_record_rules"
_GRANTED = "crm_rules_granted"
DEFAULT_SCOPE = ("own", "own", False)


@dataclass(frozen=True)
class Scope:
    """What one user may do with one model's records."""

    read: str
    write: str
    pool: bool


_ruled: tuple[int, dict[str, type]] = (-1, {})


def ruled_models() -> dict[str, type]:
    """Every mapped model that declares ``__crm_record_rules__``, by class name."""
    global _ruled
    mappers = Model.registry.mappers
    if _ruled[0] != len(mappers):
        found = {m.class_.__name__: m.class_ for m in mappers if _spec_or_none(m.class_)}
        _ruled = (len(mappers), found)
    return _ruled[1]


def _spec(cls: type) -> RuleColumns:
    return cls.__crm_record_rules__  # type: ignore[attr-defined, no-any-return]


@contextmanager
def unrestricted() -> Iterator[None]:
    """Run the block without record rules (system work inside a user's request)."""
    token = _unrestricted.set(True)
    try:
        yield
    finally:
        _unrestricted.reset(token)


@contextmanager
def acting_as(user: Any) -> Iterator[None]:
    """Apply ``user``'s rules in the block (and audit its writes as ``user``'s), whatever the
    request: a background task doing what a user asked for."""
    token = _acting.set(user)
    try:
        yield
    finally:
        _acting.reset(token)


def acting_user() -> Any:
    """The user :func:`acting_as` set (else ``None``)."""
    return _acting.get()


def grant(session: Session, obj: Any) -> None:
    """Let the next flush write ``obj`` without the write check: the caller checked it."""
    session.info.setdefault(_GRANTED, set()).add(id(obj))


@dataclass
class UserRules:
    """One user's merged rules and team facts, built once per request."""

    user_id: int
    scopes: dict[str, Scope]
    fallback: Scope
    team_id: int | None
    team_path: str | None
    _cache: dict[Any, Any] = field(default_factory=dict)

    def scope(self, cls: type) -> Scope:
        return self.scopes.get(cls.__name__, self.fallback)

    def _query(self, key: str, build: Callable[[], list[int]]) -> list[int]:
        if key not in self._cache:
            with unrestricted():
                self._cache[key] = build()
        return self._cache[key]  # type: ignore[no-any-return]

    def team_ids(self, tree: bool) -> list[int]:
        """The user's team, and with ``tree`` every team below it."""
        from ..db import session
        from ..org.models import Team

        if self.team_id is None:
            return []
        if not tree or not self.team_path:
            return [self.team_id]
        path = self.team_path
        return self._query(
            "tree",
            lambda: list(session().scalars(select(Team.id).where(Team.path.startswith(path)))),
        )

    def member_ids(self, tree: bool) -> list[int]:
        """Users in the user's team (or team tree), the user included."""
        from ..db import session
        from ..org.models import UserProfile

        teams = self.team_ids(tree)
        if not teams:
            return [self.user_id]

        def build() -> list[int]:
            query = select(UserProfile.user_id).where(UserProfile.team_id.in_(teams))
            return sorted({self.user_id, *session().scalars(query)})

        return self._query(f"members-{tree}", build)

    # ----------------------------------------------------------------- reads (SQL)

    def criteria(self, cls: type) -> ColumnElement[bool] | None:
        """The SQL condition on ``cls`` for records this user may read; ``None``: all."""
        key = ("read", cls)
        if key not in self._cache:
            self._cache[key] = self._criteria(cls)
        return self._cache[key]  # type: ignore[no-any-return]

    def _criteria(self, cls: type) -> ColumnElement[bool] | None:
        scope, spec = self.scope(cls), _spec(cls)
        if scope.read == "all":
            return None
        parts: list[ColumnElement[bool]] = []
        if scope.read != "none":
            if spec.owner:
                owner = getattr(cls, spec.owner)
                if scope.read == "own":
                    parts.append(owner == self.user_id)
                else:
                    parts.append(owner.in_(self.member_ids(scope.read == "tree")))
                if spec.pool and scope.pool:
                    parts.append(owner.is_(None))
            teams = self.team_ids(scope.read == "tree") if scope.read in ("team", "tree") else []
            if spec.team and teams:
                parts.append(getattr(cls, spec.team).in_(teams))
            if spec.parent:
                prop, key = _link(inspect(cls), spec.parent)
                parent = prop.mapper.class_
                parent_criteria = self.criteria(parent)
                if parent_criteria is None:
                    return None
                # The mapped attribute, not the table column: the condition must follow the
                # entity wherever a query puts it (joined, aliased).
                link = getattr(cls, key)
                parent_pk = inspect(parent).primary_key[0]
                parts.append(link.in_(select(parent_pk).where(parent_criteria)))
        return or_(*parts) if parts else false()

    # ----------------------------------------------------------------- writes (Python)

    def may_write(self, obj: Any, before: bool = False, plain: bool = False) -> bool:
        """Whether this user may write ``obj`` as it is now (or as it was, with ``before``).
        ``plain``: a new record built without attribute events (an import's), whose values
        are all in its ``__dict__``."""
        cls = type(obj)
        scope, spec = self.scope(cls), _spec(cls)
        if scope.write == "all":
            return True
        if scope.write == "none":
            return False
        state = inspect(obj)

        def value(name: str) -> Any:
            if plain:
                return obj.__dict__.get(name)
            if before:  # the column as loaded: a relationship set since has not reached it
                history = state.attrs[name].history
                if history.deleted:
                    return history.deleted[0]
                if history.added and not state.has_identity:
                    return None
                return getattr(obj, name)
            changed, target = _related(state, name)
            return target if changed else getattr(obj, name)

        tree = scope.write == "tree"
        if spec.owner:
            owner = value(spec.owner)
            if owner is not None and (
                owner == self.user_id
                or (scope.write in ("team", "tree") and owner in self.member_ids(tree))
            ):
                return True
        if spec.team and scope.write in ("team", "tree"):
            team = value(spec.team)
            if team is not None and team in self.team_ids(tree):
                return True
        if spec.parent:
            if plain:
                parent = obj.__dict__.get(spec.parent)
            else:
                parent = _parent_before(obj, spec.parent) if before else parent_of(obj, spec.parent)
            if parent is not None and self.may_write(parent):
                return True
        return False


def _parent_before(obj: Any, relationship: str) -> Any:
    """The record ``obj`` belonged to before this change (a moved contact's old customer)."""
    state = inspect(obj)
    prop, key = _link(state.mapper, relationship)
    history = state.attrs[key].history
    old = history.deleted[0] if history.deleted else getattr(obj, key)
    if old is None or state.session is None:
        return None
    with state.session.no_autoflush:
        return state.session.get(prop.mapper.class_, old)


def _link(mapper: Any, relationship: str) -> tuple[Any, str]:
    """A many-to-one relationship of ``mapper`` and the attribute key of its foreign key."""
    prop = mapper.relationships[relationship]
    (fk,) = prop.local_columns
    return prop, mapper.get_property_by_column(fk).key


def parent_of(obj: Any, relationship: str) -> Any:
    """The record ``obj`` belongs to through ``relationship`` as the user may see it: ``None``
    when it has none or the user may not see it. A new record may name its parent by id
    only, which SQLAlchemy does not load before the flush; it is looked up here."""
    parent = getattr(obj, relationship)
    if parent is not None:
        return parent
    state = inspect(obj)
    prop, key = _link(state.mapper, relationship)
    value = getattr(obj, key)
    if value is None or state.session is None:
        return None
    return state.session.get(prop.mapper.class_, value)


def _related(state: Any, column: str) -> tuple[bool, Any]:
    """Whether the many-to-one relationship that fills ``column`` was set in this unit of work,
    and the id of the object it was set to (its column catches up only at flush)."""
    for rel in state.mapper.relationships:
        if rel.direction.name == "MANYTOONE" and any(c.key == column for c in rel.local_columns):
            history = state.attrs[rel.key].history
            if history.added:
                target = history.added[0]
                identity = inspect(target).identity if target is not None else None
                return True, identity[0] if identity else None
            if history.deleted and not history.unchanged:
                return True, None
    return False, None


def _merge(scopes: list[Scope]) -> Scope:
    rank = SCOPES.index
    return Scope(
        max((s.read for s in scopes), key=rank),
        max((s.write for s in scopes), key=rank),
        any(s.pool for s in scopes),
    )


def load_rules(user: Any) -> UserRules | None:
    """The merged rules of ``user``; ``None`` for admins (they are not restricted)."""
    from ..db import session
    from ..org.models import Team, UserProfile

    roles = list(getattr(user, "roles", None) or [])
    key_role = api_keys.request_role()
    if key_role is not None:  # an API key limits the request to one of the user's roles
        roles = [r for r in roles if r.name == key_role]
    if any(r.name == current_app.config["AUTH_ROLE_ADMIN"] for r in roles):
        return None
    s = session()
    with unrestricted():
        rows = list(
            s.scalars(select(RecordRule).where(RecordRule.role_id.in_([r.id for r in roles])))
        )
        profile = s.execute(
            select(UserProfile.team_id, Team.path)
            .outerjoin(Team, Team.id == UserProfile.team_id)
            .where(UserProfile.user_id == user.id)
        ).first()
    per_role: dict[int, dict[str, Scope]] = {}
    for rule in rows:
        scope = Scope(rule.read_scope, rule.write_scope, rule.pool)
        per_role.setdefault(rule.role_id, {})[rule.model] = scope
    models = {m for rules in per_role.values() for m in rules if m != ANY_MODEL}
    merged: dict[str, Scope] = {}
    for model in models:
        found = [r.get(model) or r.get(ANY_MODEL) for r in per_role.values()]
        merged[model] = _merge([s for s in found if s is not None])
    fallbacks = [r[ANY_MODEL] for r in per_role.values() if ANY_MODEL in r]
    fallback = _merge(fallbacks) if fallbacks else Scope(*DEFAULT_SCOPE)
    return UserRules(
        user_id=user.id,
        scopes=merged,
        fallback=fallback,
        team_id=profile[0] if profile else None,
        team_path=profile[1] if profile else None,
    )


_DENY_ALL = object()


def current_rules() -> UserRules | None | object:
    """The rules of this request's user: ``None`` when unrestricted (no request, admin,
    :func:`unrestricted` block), ``_DENY_ALL`` while no user is signed in."""
    if _unrestricted.get():
        return None
    user = _acting.get()
    if user is None:
        if not has_request_context():
            return None
        user = g.get("user")
    if isinstance(user, LocalProxy):
        # flask-login's current_user: read the user it loaded, never make it load one (the
        # loader queries the database, which would come back here).
        user = g.get("_login_user")
    if user is None or not getattr(user, "is_authenticated", False):
        return _DENY_ALL
    cached = g.get(_G_KEY)
    if cached is not None and cached[0] == user.id:
        return cached[1]
    token = _unrestricted.set(True)
    try:
        rules = load_rules(user)
    finally:
        _unrestricted.reset(token)
    setattr(g, _G_KEY, (user.id, rules))
    return rules


def sees_all(cls: type) -> bool:
    """Whether this request's user sees every record of ``cls`` (no rule narrows the list)."""
    if _spec_or_none(cls) is None:
        return True
    rules = current_rules()
    if rules is None:
        return True
    return isinstance(rules, UserRules) and rules.scope(cls).read == "all"


def read_criteria(cls: type) -> ColumnElement[bool] | None:
    """The condition this request's user's rules put on ``cls`` (``None``: none), for SQL the
    ORM event does not see, such as a planner's row estimate."""
    if _spec_or_none(cls) is None:
        return None
    rules = current_rules()
    if rules is None:
        return None
    if not isinstance(rules, UserRules):
        return false()
    return rules.criteria(cls)


def _spec_or_none(cls: type) -> RuleColumns | None:
    spec = getattr(cls, "__crm_record_rules__", None)
    return spec if isinstance(spec, RuleColumns) else None


def _on_execute(state: ORMExecuteState) -> None:
    if not state.is_select or state.is_column_load:
        return
    rules = current_rules()
    if rules is None:
        return
    options = []
    for cls in ruled_models().values():
        if rules is _DENY_ALL:
            options.append(with_loader_criteria(cls, false()))
            continue
        assert isinstance(rules, UserRules)
        condition = rules.criteria(cls)
        if condition is not None:
            options.append(with_loader_criteria(cls, condition))
    if options:
        state.statement = state.statement.options(*options)


def _before_flush(s: Session, _ctx: Any, _instances: Any) -> None:
    rules = current_rules()
    granted = s.info.pop(_GRANTED, set())
    if rules is None:
        return
    changed = [(obj, "new") for obj in s.new]
    changed += [(obj, "dirty") for obj in s.dirty if s.is_modified(obj)]
    changed += [(obj, "deleted") for obj in s.deleted]
    for obj, kind in changed:
        spec = _spec_or_none(type(obj))
        if spec is None or id(obj) in granted:
            continue
        if not isinstance(rules, UserRules):
            raise PermissionDenied(_("You may not change this record."))
        if spec.parent and (kind == "new" or _parent_changed(obj, spec.parent)):
            _check_parent_visible(obj, spec.parent)
        before_ok = kind == "new" or rules.may_write(obj, before=True)
        after_ok = kind == "deleted" or rules.may_write(obj)
        if not before_ok:
            raise PermissionDenied(_("You may not change this record."))
        if not after_ok:
            raise PermissionDenied(_("You may not give this record to that owner or team."))


def _parent_changed(obj: Any, relationship: str) -> bool:
    state = inspect(obj)
    _prop, key = _link(state.mapper, relationship)
    return bool(
        state.attrs[key].history.has_changes() or state.attrs[relationship].history.has_changes()
    )


def _check_parent_visible(obj: Any, relationship: str) -> None:
    """A record may only be attached to a parent the user can see; naming another one is
    answered like naming one that does not exist."""
    _prop, key = _link(inspect(obj).mapper, relationship)
    value = getattr(obj, key)
    if value is not None and parent_of(obj, relationship) is None:
        raise FieldError({key: [_("No record with id %(value)s", value=value)]})


def install() -> None:
    """Listen on every session (idempotent)."""
    if not event.contains(Session, "do_orm_execute", _on_execute):
        event.listen(Session, "do_orm_execute", _on_execute)
        event.listen(Session, "before_flush", _before_flush)
