"""The authorization matrix: every screen and API that shows ruled records, checked for every
role against what the role's permissions and record rules say it may see and change.

:func:`run_matrix` builds a small organisation (华东区 with 上海组 below it, and 华南区), puts
each role's fixture user into 上海组 with a teammate, and a rep into 华南区. It creates records
of every ruled model in four situations relative to each acting user: its own, a teammate's,
another team's and, for models with a shared pool, one in the pool; a child model
(``RuleColumns(parent=...)``) gets one record per parent record, and when it has an owner of
its own also the acting user's record under the other team's parent (a follow-up whose customer
went to another region). Then it asks, as each role (one logged-in test client per role):

- every registered ``ModelRestApi``: the list (``?q=(page_size:100)``, and keyset pages with
  ``?cursor=``): which records appear and whether ``count`` agrees; each record by id; a ``PUT``
  with a harmless change and a ``DELETE`` (which archives), both undone through the ORM; and the
  related-field values of ``_info`` that name ruled records. An API of another model is checked
  for its permission only;
- every ``ModelView`` of a ruled model: the list (rows and the record count), show and edit by
  id (following redirects inside the CRM, as from the customer screen to the 360° page),
  delete and the archive action by id, and the pickers (``<select>`` options) of its add form,
  which must offer only records the user may read; a screen of another model is checked for its
  pickers of ruled records;
- every record page in :data:`RECORD_PAGES` (the customer 360° page).

Every answer of 200 is also searched for the names of records the role may not read. Screens
and APIs of disabled plugins are left out (they answer 404 for everyone).

The expected answers are worked out apart from the code that enforces them, from the role's
Flask-AppBuilder permissions and its ``crm_record_rule`` rows (read and write scope ``none``,
``own``, ``team``, ``tree``, ``all`` and the pool flag; the rule for the model, else the
role's ``*`` rule); the administrator role sees and changes everything. A hidden record is a
404, a missing permission a 403 (or a redirect to the login page); a refused write on a screen
writes nothing. A **leak** is an answer that grants what should be refused, a **denial** one
that refuses what should be granted.

A plugin covers its own ruled models with a factory for each (see :class:`Seed`)::

    from crm_core.testing.matrix import Seed, run_matrix

    def make_gadget(seed: Seed) -> Gadget:
        return Gadget(name=seed.label, customer_id=seed.parent.id, owner_id=seed.owner_id)

    def test_authorization_matrix(app):
        report = run_matrix(app, factories={"Gadget": make_gadget})
        print(report.summary())
        assert report.ok, report.failures()

A ruled model without a factory, and a ``GET`` route with a record id that is neither a
generated screen's nor in :data:`RECORD_PAGES`, stop the matrix with a message naming them, so
nothing a plugin adds is skipped unnoticed.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from html import unescape
from typing import Any
from urllib.parse import urlsplit

import prison
from flask import Flask
from flask.testing import FlaskClient
from flask_appbuilder import ModelRestApi, ModelView
from flask_appbuilder.const import PERMISSION_PREFIX
from sqlalchemy import inspect, select
from werkzeug.exceptions import HTTPException
from werkzeug.routing import MapAdapter

from ..activities.models import Activity
from ..cli.users import ensure_user
from ..customers.models import Contact, Customer
from ..db import session
from ..org.models import Team, UserProfile
from ..org.tree import refresh_paths
from ..privacy.models import Consent
from ..security.models import ANY_MODEL, SCOPES, RecordRule
from ..security.rules import ruled_models
from ..specs import RuleColumns
from .plugin import PASSWORD, ROLE_USERS, login_client

#: The four situations of a record relative to the acting user.
KINDS = ("own", "teammate", "other", "pool")
#: A fifth, for child models with an owner of their own (a follow-up): the acting user's
#: record under another team's parent (a customer that has since gone to another region).
OWN_UNDER_OTHER = "own-under-other"
_UNDER = ">"  # origin of such a record: "<owner username>><parent's origin>"
#: The organisation the matrix builds: the acting users' team sits below 华东区; 华南区 is
#: another region, not below it.
REGION, TEAM, OTHER_TEAM = "华东区", "上海组", "华南区"
#: The teammate (上海组) and the other team's rep (华南区) who own the matrix's other records.
TEAMMATE, OTHER_REP = "matrix_mate", "matrix_south"
#: What a harmless ``PUT`` writes into the edited text field.
MARKER = "权限矩阵核对"
#: Rows one list page must hold: the matrix reads every list in one page.
PAGE_SIZE = 100

_GRANTED = frozenset({"allowed", "listed", "offered"})
_REDIRECTS = (301, 302, 303, 307, 308)


@dataclass(frozen=True)
class Seed:
    """What a factory gets to build one record: its unique ``label`` (use it as the name or
    subject: the matrix looks for it in pages), the owning user and team (``None`` for the
    pool), and for a child model the parent record (committed, with its id)."""

    model: str
    label: str
    owner_id: int | None
    team_id: int | None
    parent: Any = None


#: Builds one record (not yet added to the session) of a ruled model from a :class:`Seed`.
Factory = Callable[[Seed], Any]


def _customer(seed: Seed) -> Customer:
    return Customer(name=seed.label, owner_id=seed.owner_id, team_id=seed.team_id)


def _contact(seed: Seed) -> Contact:
    return Contact(customer_id=seed.parent.id, name=seed.label, title="采购经理")


def _activity(seed: Seed) -> Activity:
    return Activity(
        customer_id=seed.parent.id, owner_id=seed.owner_id, subject=seed.label, kind="call"
    )


def _consent(seed: Seed) -> Consent:
    return Consent(
        customer_id=seed.parent.id, purpose="marketing", channel="paper", source=seed.label
    )


#: Factories by model class name; a plugin passes its own to :func:`run_matrix` (``factories=``).
FACTORIES: dict[str, Factory] = {
    "Customer": _customer,
    "Contact": _contact,
    "Activity": _activity,
    "Consent": _consent,
}

#: Record pages outside the generated screens: endpoint -> ruled model class name. Each is a
#: ``GET`` route with a ``pk`` argument that shows one record. A plugin adds its own; a
#: screen's ``GET`` route with ``pk`` that is neither standard nor listed here fails the
#: matrix, so a new record page is not left out unnoticed.
RECORD_PAGES: dict[str, str] = {"CustomerPageView.show": "Customer"}

#: The field and value of the harmless ``PUT`` per model; by default the first text column
#: (``Text``, else a nullable ``String``) of the API's edit columns gets :data:`MARKER`.
EDITS: dict[str, tuple[str, Any]] = {}

_STANDARD_ROUTES = {"show", "edit", "delete", "action", "get", "put"}


class MatrixError(AssertionError):
    """The matrix cannot run as asked (a ruled model without a factory, an unknown page)."""


# ---------------------------------------------------------------------------------- report


@dataclass(frozen=True)
class Check:
    """One comparison of an expected answer with the actual one."""

    role: str
    endpoint: str
    op: str
    record: str
    expected: str
    actual: str
    verdict: str  # "leak", "denial" or "mismatch"

    def __str__(self) -> str:
        return (
            f"{self.verdict.upper():8} {self.role} | {self.endpoint} {self.op} | "
            f"{self.record} | expected {self.expected}, got {self.actual}"
        )


@dataclass
class MatrixReport:
    """Figures and every disagreement of one run."""

    endpoints: list[str] = field(default_factory=list)
    roles: list[str] = field(default_factory=list)
    models: list[str] = field(default_factory=list)
    checks: int = 0
    per_endpoint: dict[str, int] = field(default_factory=dict)
    problems: list[Check] = field(default_factory=list)
    seconds: float = 0.0

    def _count(self, verdict: str) -> int:
        return sum(1 for p in self.problems if p.verdict == verdict)

    @property
    def leaks(self) -> list[Check]:
        """Answers that granted what the rules deny."""
        return [p for p in self.problems if p.verdict == "leak"]

    @property
    def denials(self) -> list[Check]:
        """Answers that refused what the rules allow."""
        return [p for p in self.problems if p.verdict == "denial"]

    @property
    def ok(self) -> bool:
        return not self.problems

    def summary(self) -> str:
        return (
            f"matrix: {len(self.endpoints)} endpoints × {len(self.roles)} roles × "
            f"{len(KINDS)} records (+1 {OWN_UNDER_OTHER} for child models with an owner) = "
            f"{self.checks} checks, {self._count('leak')} leaks, "
            f"{self._count('denial')} denials, {self._count('mismatch')} other mismatches "
            f"({', '.join(self.models)}; {self.seconds:.1f} s)"
        )

    def table(self) -> str:
        """Checks per endpoint, all roles together."""
        width = max((len(name) for name in self.per_endpoint), default=0)
        return "\n".join(
            f"  {name:<{width}}  {count:>5} checks" for name, count in self.per_endpoint.items()
        )

    def failures(self) -> str:
        """The summary and one line per disagreement (role | endpoint op | record | ...)."""
        lines = [self.summary(), *(str(p) for p in self.problems)]
        return "\n".join(lines)


# ---------------------------------------------------------------------------------- oracle


@dataclass(frozen=True)
class Scope:
    read: str
    write: str
    pool: bool


@dataclass(frozen=True)
class Row:
    """What the oracle needs to know about one record."""

    model: str
    pk: int
    owner: int | None
    team: int | None
    parent: tuple[str, int] | None
    label: str | None = None


@dataclass
class Actor:
    """One acting user: permissions, record rules and team, read from the database."""

    role: str
    username: str
    user_id: int
    admin: bool
    permissions: set[tuple[str, str]]
    rules: dict[int, dict[str, Scope]]
    teams: set[int]  # the user's team
    tree: set[int]  # the user's team and every team below it
    members: set[int]  # users of ``teams``, the user included
    tree_members: set[int]

    def has(self, permission: tuple[str, str] | None) -> bool:
        return permission is not None and permission in self.permissions

    def scope(self, model: str) -> Scope:
        """The widest of the user's roles' rules for ``model`` (else their ``*`` rules)."""
        found = [r.get(model) or r.get(ANY_MODEL) for r in self.rules.values()]
        scopes = [s for s in found if s is not None]
        if not scopes:
            return Scope("own", "own", False)
        rank = SCOPES.index
        return Scope(
            max((s.read for s in scopes), key=rank),
            max((s.write for s in scopes), key=rank),
            any(s.pool for s in scopes),
        )

    def may(self, row: Row, facts: dict[tuple[str, int], Row], write: bool = False) -> bool:
        """Whether the rules let this user read (or write) ``row``."""
        if self.admin:
            return True
        scope = self.scope(row.model)
        level = scope.write if write else scope.read
        if level == "all":
            return True
        if level == "none":
            return False
        spec = _spec(row.model)
        wide = level in ("team", "tree")
        if spec.owner:
            if row.owner is not None and row.owner == self.user_id:
                return True
            members = self.tree_members if level == "tree" else self.members
            if wide and row.owner is not None and row.owner in members:
                return True
            if not write and spec.pool and scope.pool and row.owner is None:
                return True
        teams = self.tree if level == "tree" else self.teams
        if spec.team and wide and row.team is not None and row.team in teams:
            return True
        if row.parent is not None:
            parent = facts.get(row.parent)
            if parent is not None and self.may(parent, facts, write):
                return True
        return False


def _spec(model: str) -> RuleColumns:
    return ruled_models()[model].__crm_record_rules__  # type: ignore[attr-defined, no-any-return]


def _load_actor(app: Flask, role: str, username: str) -> Actor:
    with app.app_context():
        s = session()
        user = app.appbuilder.sm.find_user(username=username)  # type: ignore[attr-defined]
        assert user is not None, f"no user {username!r} for role {role!r}"
        roles = list(user.roles)
        permissions = {
            (pv.permission.name, pv.view_menu.name)
            for r in roles
            for pv in r.permissions
            if pv.permission is not None and pv.view_menu is not None
        }
        rules: dict[int, dict[str, Scope]] = {r.id: {} for r in roles}
        query = select(RecordRule).where(RecordRule.role_id.in_([r.id for r in roles]))
        for rule in s.scalars(query):
            rules[rule.role_id][rule.model] = Scope(
                rule.read_scope, rule.write_scope, bool(rule.pool)
            )
        parents = dict(s.execute(select(Team.id, Team.parent_id)).tuples().all())
        profiles = dict(s.execute(select(UserProfile.user_id, UserProfile.team_id)).tuples().all())
        team = profiles.get(user.id)
        teams = {team} if team is not None else set()
        tree = set(teams)
        grew = True
        while grew:
            below = {t for t, p in parents.items() if p in tree} - tree
            tree |= below
            grew = bool(below)
        admin = any(r.name == app.config["AUTH_ROLE_ADMIN"] for r in roles)
        return Actor(
            role=role,
            username=username,
            user_id=user.id,
            admin=admin,
            permissions=permissions,
            rules=rules,
            teams=teams,
            tree=tree,
            members={u for u, t in profiles.items() if t in teams} | {user.id},
            tree_members={u for u, t in profiles.items() if t in tree} | {user.id},
        )


# ---------------------------------------------------------------------------------- endpoints


@dataclass
class Endpoint:
    """A screen, API or record page the matrix asks."""

    name: str
    kind: str  # "api", "screen" or "page"
    view: Any
    model: str | None  # the ruled model it shows; None: another model (pickers, access only)
    pickers: dict[str, str] = field(default_factory=dict)  # field -> ruled model
    page_endpoint: str = ""
    page_rule: str = ""

    @property
    def label(self) -> str:
        if self.kind == "api":
            return f"/api/v1/{self.view.resource_name}/"
        if self.kind == "page":
            return self.page_rule
        return f"{self.view.route_base}/"


def _permission(view: Any, method: str) -> tuple[str, str] | None:
    """The permission a request to ``view.method`` needs, as Flask-AppBuilder declares it; None
    when the view does not grant it at all (not in its base permissions)."""
    mapping = getattr(view, "method_permission_name", None) or {}
    func = getattr(view, method, None)
    name = mapping.get(method) or getattr(func, "_permission_name", None) or method
    permission = name if name.startswith(PERMISSION_PREFIX) else PERMISSION_PREFIX + name
    if permission not in (view.base_permissions or []):
        return None
    return permission, view.class_permission_name


def _action_permissions(view: Any, name: str) -> list[tuple[str, str]]:
    """The permission an action of a screen needs: Flask-AppBuilder checks the bare action
    name (``archive``); roles are written with ``can_archive``. A role holding either is
    taken as granted the action, so a role given it under the other name shows as refused."""
    permission = view.get_action_permission_name(name)
    bare = permission.removeprefix(PERMISSION_PREFIX)
    return [
        (bare, view.class_permission_name),
        (PERMISSION_PREFIX + bare, view.class_permission_name),
    ]


def _pickers(view: Any, ruled: dict[str, type]) -> dict[str, str]:
    """Relationship fields of the add form (or ``add_columns`` of an API) to ruled models:
    FAB's selects and the CRM's record pickers (:mod:`crm_core.web.pickers`)."""
    from ..web.pickers import RecordPickerField

    out: dict[str, str] = {}
    extra = getattr(view, "add_form_extra_fields", None) or {}
    for column in getattr(view, "add_columns", None) or []:
        picker = getattr(extra.get(column), "field_class", None) is RecordPickerField
        if (column in extra and not picker) or not view.datamodel.is_relation(column):
            continue
        related = view.datamodel.get_related_model(column)
        name = str(related.__name__)
        if ruled.get(name) is related:
            out[column] = name
    return out


def enumerate_endpoints(app: Flask) -> list[Endpoint]:
    """Every enabled ``ModelRestApi``, every ``ModelView`` of a ruled model (or with pickers
    of ruled records) and every registered record page of ``app``."""
    registry = app.extensions["crm"]
    ruled = ruled_models()
    found: list[Endpoint] = []
    unknown: list[str] = []
    adapter = app.url_map.bind("localhost")
    with app.app_context():
        for view in app.appbuilder.baseviews:  # type: ignore[attr-defined]
            owner = registry.owner_of_endpoint.get(view.endpoint)
            if owner is not None and not registry.is_enabled(owner):
                continue
            name = type(view).__name__
            model = getattr(getattr(view, "datamodel", None), "obj", None)
            model_name = str(model.__name__) if model is not None else None
            if model_name is not None and ruled.get(model_name) is not model:
                model_name = None
            generated = isinstance(view, ModelRestApi | ModelView)
            if isinstance(view, ModelRestApi):
                found.append(Endpoint(name, "api", view, model_name, _pickers(view, ruled)))
            elif isinstance(view, ModelView):
                pickers = _pickers(view, ruled)
                if model_name or pickers:
                    found.append(Endpoint(name, "screen", view, model_name, pickers))
            for rule in adapter.map.iter_rules():
                if not rule.endpoint.startswith(view.endpoint + "."):
                    continue
                if "pk" not in rule.arguments or "GET" not in (rule.methods or ()):
                    continue
                if rule.endpoint in RECORD_PAGES:
                    page_model = RECORD_PAGES[rule.endpoint]
                    if page_model not in ruled:
                        raise MatrixError(f"record page {rule.endpoint}: {page_model} is not ruled")
                    found.append(
                        Endpoint(name, "page", view, page_model, {}, rule.endpoint, rule.rule)
                    )
                elif owner is None:
                    continue
                elif not generated or (
                    model_name and rule.endpoint.split(".", 1)[1] not in _STANDARD_ROUTES
                ):
                    # a record page of its own, or an extra route of a ruled model's screen
                    unknown.append(f"{rule.endpoint} ({rule.rule})")
    if unknown:
        raise MatrixError(
            "authorization matrix: GET routes with a record id that the matrix does not know; "
            "add each to crm_core.testing.matrix.RECORD_PAGES (endpoint -> ruled model): "
            + ", ".join(unknown)
        )
    return found


# ---------------------------------------------------------------------------------- data


@dataclass
class Records:
    """The matrix's records: per model, per origin (owning username, ``None``: the pool)."""

    by_model: dict[str, dict[str | None, int]] = field(default_factory=dict)
    labels: dict[tuple[str, int], str] = field(default_factory=dict)
    origin: dict[tuple[str, int], str | None] = field(default_factory=dict)


def _member(app: Flask, username: str, team_id: int) -> int:
    ensure_user(username, PASSWORD, f"{username}@example.cn", "Sales Rep", first=username)
    user = app.appbuilder.sm.find_user(username=username)  # type: ignore[attr-defined]
    s = session()
    profile = s.scalar(select(UserProfile).where(UserProfile.user_id == user.id))
    if profile is None:
        s.add(UserProfile(user_id=user.id, team_id=team_id))
    elif profile.team_id != team_id:
        profile.team_id = team_id
    return int(user.id)


def _team(name: str, parent_id: int | None) -> int:
    s = session()
    under = Team.parent_id.is_(None) if parent_id is None else Team.parent_id == parent_id
    team = s.scalar(select(Team).where(Team.name == name, under))
    if team is None:
        team = Team(name=name, parent_id=parent_id)
        s.add(team)
        s.flush()
    return int(team.id)


def build_org(app: Flask, usernames: Iterable[str]) -> dict[str, tuple[int, int]]:
    """Teams 华东区 > 上海组 and 华南区; ``usernames`` and the teammate in 上海组, the other
    rep in 华南区. Returns username -> (user id, team id)."""
    with app.app_context():
        region = _team(REGION, None)
        team = _team(TEAM, region)
        other = _team(OTHER_TEAM, None)
        session().commit()
        refresh_paths()
        owners = {name: (_member(app, name, team), team) for name in [*usernames, TEAMMATE]}
        owners[OTHER_REP] = (_member(app, OTHER_REP, other), other)
        session().commit()
        return owners


def _ordered(models: Iterable[str]) -> list[str]:
    """Ruled models with parents first."""
    ruled = ruled_models()
    out: list[str] = []

    def visit(name: str, path: tuple[str, ...]) -> None:
        if name in out:
            return
        if name in path:
            raise MatrixError(f"authorization matrix: parent cycle {' -> '.join(path)}")
        parent = _parent_model(ruled[name])
        if parent is not None:
            visit(parent, (*path, name))
        out.append(name)

    for name in sorted(models):
        visit(name, ())
    return out


def _mapper(cls: type) -> Any:
    return inspect(cls)


def _parent_model(cls: type) -> str | None:
    spec: RuleColumns = cls.__crm_record_rules__  # type: ignore[attr-defined]
    if not spec.parent:
        return None
    return str(_mapper(cls).relationships[spec.parent].mapper.class_.__name__)


def check_factories(models: Iterable[str], factories: dict[str, Factory]) -> None:
    """Every ruled model needs a factory: one without stops the matrix, naming it."""
    ruled = ruled_models()
    missing = [m for m in models if m not in factories]
    if missing:
        raise MatrixError(
            "authorization matrix: no factory for the ruled model(s) "
            + ", ".join(f"{m} ({ruled[m].__module__})" for m in missing)
            + "; register one in crm_core.testing.matrix.FACTORIES or pass it to run_matrix("
            "factories=...) (model name -> callable(Seed) returning an unsaved record)"
        )


def create_records(
    app: Flask,
    models: list[str],
    owners: dict[str, tuple[int, int]],
    factories: dict[str, Factory],
) -> Records:
    """One record of each root model per owner (and one in the pool where the model has one);
    one record of each child model per record of its parent, and for a child model with an
    owner of its own one more per owner under the other team's parent record."""
    ruled = ruled_models()
    check_factories(models, factories)
    records = Records()
    counter = 0
    with app.app_context():
        s = session()
        for name in models:
            cls = ruled[name]
            spec: RuleColumns = cls.__crm_record_rules__  # type: ignore[attr-defined]
            parent_name = _parent_model(cls)
            seeds: list[tuple[str | None, Any]] = []
            if parent_name is None:
                seeds = [(u, None) for u in owners]
                if spec.pool:
                    seeds.append((None, None))
            else:
                parents = records.by_model[parent_name]
                for origin, pk in parents.items():
                    seeds.append((origin, s.get(ruled[parent_name], pk)))
                if spec.owner and OTHER_REP in parents:
                    other_parent = s.get(ruled[parent_name], parents[OTHER_REP])
                    for user in owners:
                        if user != OTHER_REP:
                            seeds.append((f"{user}{_UNDER}{OTHER_REP}", other_parent))
            made: dict[str | None, Any] = {}
            for origin, parent in seeds:
                counter += 1
                owner = origin.split(_UNDER)[0] if origin is not None else None
                user_id, team_id = owners[owner] if owner is not None else (None, None)
                label = f"矩阵{name}{counter:03d}号"
                seed = Seed(name, label, user_id, team_id, parent)
                obj = factories[name](seed)
                s.add(obj)
                made[origin] = (obj, label)
            s.commit()
            records.by_model[name] = {}
            for origin, (obj, label) in made.items():
                key = (name, int(inspect(obj).identity[0]))
                records.by_model[name][origin] = key[1]
                records.labels[key] = label
                records.origin[key] = origin
    return records


def snapshot(app: Flask, models: Iterable[str], records: Records) -> dict[tuple[str, int], Row]:
    """Owner, team and parent of every row of ``models``, read without rules."""
    ruled = ruled_models()
    facts: dict[tuple[str, int], Row] = {}
    with app.app_context():
        s = session()
        for name in models:
            cls = ruled[name]
            spec: RuleColumns = cls.__crm_record_rules__  # type: ignore[attr-defined]
            parent_name = _parent_model(cls)
            fk = None
            if spec.parent:
                (column,) = _mapper(cls).relationships[spec.parent].local_columns
                fk = column.key
            pk_name = _mapper(cls).primary_key[0].key
            rows: list[Any] = list(s.scalars(select(cls)))
            for obj in rows:
                pk = int(getattr(obj, pk_name))
                parent_pk = getattr(obj, fk) if fk else None
                facts[(name, pk)] = Row(
                    model=name,
                    pk=pk,
                    owner=getattr(obj, spec.owner) if spec.owner else None,
                    team=getattr(obj, spec.team) if spec.team else None,
                    parent=(parent_name, int(parent_pk))
                    if parent_name and parent_pk is not None
                    else None,
                    label=records.labels.get((name, pk)),
                )
    return facts


# ---------------------------------------------------------------------------------- pages


_ROW_ID = re.compile(r'name="rowid" value="(\d+)"')
_COUNT = re.compile(r"(?:记录数|Record Count)\s*:\s*(?:</?\w+[^>]*>\s*)*(\d+)")
_SELECT = re.compile(r"<select\b([^>]*)>(.*?)</select>", re.S)
_OPTION = re.compile(r'<option\b[^>]*\bvalue="([^"]*)"')
_NAME = re.compile(r'\bname="([^"]+)"')


#: A record picker on a form: its field name and the address it asks (either order).
_PICKER_URL = re.compile(
    r'<select(?=[^>]*class="[^"]*crm-record-picker)(?=[^>]*\bname="([^"]+)")'
    r'(?=[^>]*\bdata-url="([^"]+)")[^>]*>'
)


def _options(html: str) -> dict[str, set[int]]:
    out: dict[str, set[int]] = {}
    for attrs, body in _SELECT.findall(html):
        name = _NAME.search(attrs)
        if name:
            out[name.group(1)] = {int(v) for v in _OPTION.findall(body) if v.isdigit()}
    return out


def _status(code: int, location: str, login: str) -> str:
    if code == 200:
        return "allowed"
    if code == 404:
        return "404"
    if code in (401, 403):
        return "403"
    if code in _REDIRECTS and urlsplit(location).path.startswith(login):
        return "403"
    return f"status {code}"


# ---------------------------------------------------------------------------------- run


class _Run:
    """One matrix run: the checks of every role on every endpoint."""

    def __init__(
        self,
        app: Flask,
        endpoints: list[Endpoint],
        records: Records,
        facts: dict[tuple[str, int], Row],
        report: MatrixReport,
    ) -> None:
        self.app = app
        self.endpoints = endpoints
        self.records = records
        self.facts = facts
        self.report = report
        self.adapter: MapAdapter = app.url_map.bind("localhost")
        self.views = {v.endpoint: v for v in app.appbuilder.baseviews}  # type: ignore[attr-defined]
        appbuilder: Any = app.appbuilder  # type: ignore[attr-defined]
        with app.test_request_context():
            self.login = urlsplit(appbuilder.get_url_for_login).path
        self.base_lists: dict[str, set[int]] = {}
        self.base_options: dict[tuple[str, str], set[int]] = {}
        # set per role
        self.actor: Actor
        self.client: FlaskClient

    # -- bookkeeping ----------------------------------------------------------------------
    def tally(self, ep: Endpoint) -> None:
        self.report.checks += 1
        name = f"{ep.name} {ep.label}"
        self.report.per_endpoint[name] = self.report.per_endpoint.get(name, 0) + 1

    def check(
        self, ep: Endpoint, op: str, record: str, expected: Iterable[str], actual: str
    ) -> None:
        wanted = frozenset(expected)
        self.tally(ep)
        if actual in wanted:
            return
        if actual in _GRANTED:
            verdict = "leak"
        elif wanted & _GRANTED:
            verdict = "denial"
        else:
            verdict = "mismatch"
        self.problem(ep, op, record, " or ".join(sorted(wanted)), actual, verdict)

    def problem(
        self, ep: Endpoint, op: str, record: str, expected: str, actual: str, verdict: str
    ) -> None:
        self.report.problems.append(
            Check(self.actor.role, f"{ep.name} {ep.label}", op, record, expected, actual, verdict)
        )

    def kind_of(self, key: tuple[str, int]) -> str:
        origin = self.records.origin.get(key, "?")
        if origin is None:
            return "pool"
        owner, under, _parent = origin.partition(_UNDER)
        if under:
            return OWN_UNDER_OTHER if owner == self.actor.username else "teammate-under-other"
        if origin == self.actor.username:
            return "own"
        if origin == OTHER_REP:
            return "other"
        return "teammate"

    def designated(self, model: str) -> dict[str, int]:
        """The record of ``model`` in each situation relative to the acting user."""
        by_origin = self.records.by_model[model]
        out = {}
        for kind, origin in (
            ("own", self.actor.username),
            ("teammate", TEAMMATE),
            ("other", OTHER_REP),
            ("pool", None),
            (OWN_UNDER_OTHER, f"{self.actor.username}{_UNDER}{OTHER_REP}"),
        ):
            if origin in by_origin:
                out[kind] = by_origin[origin]
        return out

    def readable(self, model: str, pk: int) -> bool:
        row = self.facts.get((model, pk))
        return row is not None and self.actor.may(row, self.facts)

    def writable(self, model: str, pk: int) -> bool:
        row = self.facts.get((model, pk))
        return (
            row is not None
            and self.actor.may(row, self.facts)
            and self.actor.may(row, self.facts, write=True)
        )

    def scan(self, ep: Endpoint, op: str, text: str) -> None:
        """An answer must not name a record the role may not read."""
        self.tally(ep)
        for key, label in self.records.labels.items():
            if label in text and not self.readable(*key):
                self.problem(
                    ep,
                    op,
                    f"{self.kind_of(key)} {key[0]} #{key[1]}",
                    "not named",
                    f"names {label}",
                    "leak",
                )

    def body(self, response: Any) -> str:
        text: str = response.get_data(as_text=True)
        if response.is_json:
            return json.dumps(response.get_json(silent=True), ensure_ascii=False)
        return unescape(text)

    # -- requests -------------------------------------------------------------------------
    def get(self, ep: Endpoint, op: str, path: str) -> tuple[str, set[tuple[str, str] | None], Any]:
        """GET ``path``, following redirects inside the CRM; the outcome and the permissions
        the redirects' targets need."""
        needed: set[tuple[str, str] | None] = set()
        response = None
        for _hop in range(5):
            response = self.client.get(path)
            location = response.headers.get("Location", "")
            if response.status_code not in _REDIRECTS or urlsplit(location).path.startswith(
                self.login
            ):
                break
            needed.add(self.permission_of(urlsplit(location).path))
            path = location
        assert response is not None
        outcome = _status(response.status_code, response.headers.get("Location", ""), self.login)
        if outcome == "allowed":
            self.scan(ep, op, self.body(response))
        return outcome, needed, response

    def permission_of(self, path: str) -> tuple[str, str] | None:
        try:
            endpoint, _args = self.adapter.match(path, method="GET")
        except HTTPException:
            return None
        blueprint, _, method = str(endpoint).partition(".")
        view = self.views.get(blueprint)
        return _permission(view, method) if view is not None else None

    def state(self, model: str, pk: int, column: str) -> Any:
        with self.app.app_context():
            obj = session().get(ruled_models()[model], pk)
            return getattr(obj, column) if obj is not None else None

    def undo(self, model: str, pk: int, column: str, value: Any) -> None:
        with self.app.app_context():
            obj = session().get(ruled_models()[model], pk)
            if obj is not None and getattr(obj, column) != value:
                setattr(obj, column, value)
                session().commit()

    def write(
        self, model: str, pk: int, column: str, method: str, path: str, **kwargs: Any
    ) -> tuple[Any, bool]:
        """Send a write, tell whether ``column`` changed, and put it back."""
        before = self.state(model, pk, column)
        response = self.client.open(path, method=method, **kwargs)
        after = self.state(model, pk, column)
        self.undo(model, pk, column, before)
        return response, after != before

    # -- expectations ---------------------------------------------------------------------
    def expect_read(
        self, permissions: Iterable[tuple[str, str] | None], model: str, pk: int, base: bool
    ) -> set[str]:
        if not all(self.actor.has(p) for p in permissions):
            return {"403"}
        if not self.readable(model, pk):
            return {"404"}
        return {"allowed"} if base else {"allowed", "404"}

    def expect_write(
        self,
        permissions: Sequence[tuple[str, str] | None],
        model: str,
        pk: int,
        base: bool = True,
    ) -> set[str]:
        """``permissions``: any one of them grants the write."""
        if not any(self.actor.has(p) for p in permissions):
            return {"403"}
        if not self.readable(model, pk):
            return {"404"}
        if not self.writable(model, pk):
            return {"403"}
        return {"allowed"} if base else {"allowed", "404"}

    def all_of(self, model: str) -> set[int]:
        return {pk for name, pk in self.facts if name == model}

    def base(self, key: str, model: str) -> set[int]:
        """The records a list shows without rules: the administrator's list, else all."""
        found = self.base_lists.get(key)
        return self.all_of(model) if found is None else found

    def expect_listed(self, base: set[int], model: str) -> set[int]:
        return {pk for pk in base if self.readable(model, pk)}

    # -- one role -------------------------------------------------------------------------
    def run_role(self, actor: Actor, client: FlaskClient) -> None:
        self.actor, self.client = actor, client
        for ep in self.endpoints:
            if ep.kind == "api":
                self.api(ep)
            elif ep.kind == "screen":
                self.screen(ep)
            else:
                self.page(ep)

    def listing(
        self,
        ep: Endpoint,
        op: str,
        allowed: bool,
        status: str,
        shown: set[int],
        count: int | None,
    ) -> None:
        """Compare one list's rows and count with the records the role may read."""
        assert ep.model is not None
        expected_ids = self.expect_listed(self.base(ep.name + op, ep.model), ep.model)
        for kind, pk in self.designated(ep.model).items():
            want = {"listed" if pk in expected_ids else "absent"} if allowed else {"403"}
            got = ("listed" if pk in shown else "absent") if status == "allowed" else status
            self.check(ep, op, f"{kind} #{pk}", want, got)
        if status != "allowed" or not allowed:
            return
        self.tally(ep)
        extra, missing = shown - expected_ids, expected_ids - shown
        if extra:
            self.problem(
                ep, op, "all rows", f"{len(expected_ids)} rows", f"also ids {sorted(extra)}", "leak"
            )
        if missing:
            self.problem(
                ep,
                op,
                "all rows",
                f"{len(expected_ids)} rows",
                f"missing ids {sorted(missing)}",
                "denial",
            )
        self.tally(ep)
        if count != len(expected_ids):
            if count is None:
                verdict = "mismatch"
            else:
                verdict = "leak" if count > len(expected_ids) else "denial"
            self.problem(ep, op, "count", str(len(expected_ids)), str(count), verdict)

    def pickers(self, ep: Endpoint, op: str, status: str, offered: dict[str, set[int]]) -> None:
        for column, model in ep.pickers.items():
            base = self.base_options.get((ep.name, column))
            expected_ids = self.expect_listed(self.all_of(model) if base is None else base, model)
            for kind, pk in self.designated(model).items():
                if status != "allowed":
                    got = status
                else:
                    got = "offered" if pk in offered.get(column, set()) else "not offered"
                if self.form_forbidden(ep):
                    want = {"403"}
                else:
                    want = {"offered"} if pk in expected_ids else {"not offered"}
                self.check(ep, f"{op} picker {column}", f"{kind} {model} #{pk}", want, got)
            if status == "allowed":
                self.tally(ep)
                shown = offered.get(column, set())
                extra, missing = shown - expected_ids, expected_ids - shown
                if extra:
                    self.problem(
                        ep,
                        f"{op} picker {column}",
                        "all options",
                        f"{len(expected_ids)} options",
                        f"also ids {sorted(extra)}",
                        "leak",
                    )
                if missing:
                    self.problem(
                        ep,
                        f"{op} picker {column}",
                        "all options",
                        f"{len(expected_ids)} options",
                        f"missing ids {sorted(missing)}",
                        "denial",
                    )

    def form_forbidden(self, ep: Endpoint) -> bool:
        method = "info" if ep.kind == "api" else "add"
        return not self.actor.has(_permission(ep.view, method))

    # -- REST APIs ------------------------------------------------------------------------
    def api(self, ep: Endpoint) -> None:
        view = ep.view
        root = f"/api/v1/{view.resource_name}/"
        may_list = self.actor.has(_permission(view, "get_list"))
        if ep.model is None:
            status, _needed, _response = self.get(
                ep, "list", root + "?q=" + prison.dumps({"page_size": 1})
            )
            self.check(ep, "list", "-", {"allowed"} if may_list else {"403"}, status)
        else:
            for op, path in self.list_paths(ep):
                status, _needed, response = self.get(ep, op, path)
                shown: set[int] = set()
                count = None
                if status == "allowed":
                    body = response.get_json()
                    shown = {int(i) for i in body.get("ids", [])}
                    count = body.get("count")
                self.listing(ep, op, may_list, status, shown, count)
            self.api_records(ep, root)
        if ep.pickers:
            status, _needed, response = self.get(ep, "_info", self.info_path(ep))
            offered: dict[str, set[int]] = {}
            if status == "allowed":
                for info in response.get_json().get("add_columns", []):
                    if info.get("name") in ep.pickers:
                        offered[info["name"]] = {int(v["id"]) for v in info.get("values", [])}
            self.pickers(ep, "_info", status, offered)

    def list_paths(self, ep: Endpoint) -> list[tuple[str, str]]:
        root = f"/api/v1/{ep.view.resource_name}/"
        paths = [("list", root + "?q=" + prison.dumps({"page_size": PAGE_SIZE}))]
        if hasattr(ep.view.datamodel, "query_page"):
            paths.append(("list (cursor)", f"{root}?cursor=&page_size={PAGE_SIZE}"))
        return paths

    def info_path(self, ep: Endpoint) -> str:
        q = {
            "keys": ["add_columns"],
            "add_columns": {c: {"page": 0, "page_size": PAGE_SIZE} for c in ep.pickers},
        }
        return f"/api/v1/{ep.view.resource_name}/_info?q=" + prison.dumps(q)

    def edit_of(self, ep: Endpoint) -> tuple[str, Any]:
        assert ep.model is not None
        if ep.model in EDITS:
            return EDITS[ep.model]
        cls = ruled_models()[ep.model]
        columns = _mapper(cls).columns
        candidates = [c for c in ep.view.edit_columns if c in columns]
        for column in candidates:
            if type(columns[column].type).__name__ == "Text":
                return column, MARKER
        for column in candidates:
            col = columns[column]
            if type(col.type).__name__ == "String" and col.nullable and not col.unique:
                return column, MARKER
        raise MatrixError(
            f"authorization matrix: no text field to edit on {ep.name}; add "
            f"crm_core.testing.matrix.EDITS[{ep.model!r}] = (field, value)"
        )

    def api_records(self, ep: Endpoint, root: str) -> None:
        assert ep.model is not None
        view, model = ep.view, ep.model
        column, value = self.edit_of(ep)
        get_p, put_p, delete_p = (_permission(view, m) for m in ("get", "put", "delete"))
        for kind, pk in self.designated(model).items():
            record = f"{kind} #{pk}"
            status, _needed, _response = self.get(ep, "item", f"{root}{pk}")
            self.check(ep, "item", record, self.expect_read([get_p], model, pk, True), status)

            response, changed = self.write(
                model, pk, column, "PUT", f"{root}{pk}", json={column: value}
            )
            self.check(
                ep,
                "put",
                record,
                self.expect_write([put_p], model, pk),
                self.written(response, changed),
            )
            if hasattr(ruled_models()[model], "active"):
                response, changed = self.write(model, pk, "active", "DELETE", f"{root}{pk}")
                self.check(
                    ep,
                    "delete",
                    record,
                    self.expect_write([delete_p], model, pk),
                    self.written(response, changed),
                )

    def written(self, response: Any, changed: bool) -> str:
        if changed:
            return "allowed"
        if response.status_code == 200:
            return "200 without a change"
        outcome = _status(response.status_code, "", self.login)
        if outcome.startswith("status"):
            outcome += " " + self.body(response)[:200].strip()
        return outcome

    # -- screens --------------------------------------------------------------------------
    def screen(self, ep: Endpoint) -> None:
        view = ep.view
        route = view.route_base
        if ep.model is not None:
            may_list = self.actor.has(_permission(view, "list"))
            path = f"{route}/list/?psize_{type(view).__name__}={PAGE_SIZE}"
            status, _needed, response = self.get(ep, "list", path)
            shown: set[int] = set()
            count = None
            if status == "allowed":
                html = response.get_data(as_text=True)
                shown = self.rows(ep, html)
                found = _COUNT.search(html)
                count = int(found.group(1)) if found else None
            self.listing(ep, "list", may_list, status, shown, count)
            self.screen_records(ep)
        if ep.pickers:
            status, _needed, response = self.get(ep, "add", f"{route}/add")
            offered: dict[str, set[int]] = {}
            if status == "allowed":
                offered = self.offered(response.get_data(as_text=True), self.client)
            self.pickers(ep, "add", status, offered)

    def offered(self, html: str, client: FlaskClient) -> dict[str, set[int]]:
        """The ids a form offers per field: its selects' options, and what each record
        picker's address gives ``client``."""
        found = _options(html)
        for column, url in _PICKER_URL.findall(html):
            found[column] = self.picked(url, client)
        return found

    def picked(self, url: str, client: FlaskClient) -> set[int]:
        """Every id a record picker offers (``/pick/<name>``, page by page), none when the
        role may not ask it."""
        ids: set[int] = set()
        for page in range(1, 100):
            response = client.get(url, query_string={"q": "", "page": page})
            if response.status_code != 200:
                return ids
            data = response.get_json()
            ids |= {int(item["id"]) for item in data["results"]}
            if not data["pagination"]["more"]:
                return ids
        return ids

    def rows(self, ep: Endpoint, html: str) -> set[int]:
        """Ids of a list page's rows: their show, edit and delete links and action boxes, and
        the matrix's records named on the page."""
        route = re.escape(ep.view.route_base)
        ids = {int(i) for i in re.findall(rf"{route}/(?:show|edit|delete)/(\d+)", html)}
        ids |= {int(i) for i in _ROW_ID.findall(html)}
        text = unescape(html)
        for (model, pk), label in self.records.labels.items():
            if model == ep.model and label in text:
                ids.add(pk)
        return ids

    def screen_records(self, ep: Endpoint) -> None:
        assert ep.model is not None
        view, model, route = ep.view, ep.model, ep.view.route_base
        base = self.base(ep.name + "list", model)
        show_p, edit_p, delete_p = (_permission(view, m) for m in ("show", "edit", "delete"))
        archive_p = _action_permissions(view, "archive") if "archive" in view.actions else None
        for kind, pk in self.designated(model).items():
            record = f"{kind} #{pk}"
            in_base = pk in base
            status, needed, _response = self.get(ep, "show", f"{route}/show/{pk}")
            want = self.expect_read([show_p, *needed], model, pk, in_base)
            self.check(ep, "show", record, want, status)
            status, needed, _response = self.get(ep, "edit", f"{route}/edit/{pk}")
            want = self.expect_read([edit_p, *needed], model, pk, in_base)
            self.check(ep, "edit", record, want, status)
            if not hasattr(ruled_models()[model], "active"):
                continue
            _response, changed = self.write(model, pk, "active", "POST", f"{route}/delete/{pk}")
            want = self.refusal(self.expect_write([delete_p], model, pk, in_base))
            self.check(ep, "delete", record, want, "allowed" if changed else "refused")
            if archive_p is not None:
                _response, changed = self.write(
                    model,
                    pk,
                    "active",
                    "POST",
                    f"{route}/action_post",
                    data={"action": "archive", "rowid": str(pk)},
                )
                # The action archives only records its screen lists (the pool screen: pooled).
                want = self.refusal(self.expect_write(archive_p, model, pk, in_base))
                self.check(ep, "archive", record, want, "allowed" if changed else "refused")

    @staticmethod
    def refusal(expected: set[str]) -> set[str]:
        """A screen answers a refused write with a 403, a 404 or a page with a message."""
        return {"allowed" if e == "allowed" else "refused" for e in expected}

    # -- record pages ---------------------------------------------------------------------
    def page(self, ep: Endpoint) -> None:
        assert ep.model is not None
        method = ep.page_endpoint.split(".", 1)[1]
        permission = _permission(ep.view, method)
        for kind, pk in self.designated(ep.model).items():
            path = self.adapter.build(ep.page_endpoint, {"pk": pk})
            status, needed, _response = self.get(ep, "show", path)
            want = self.expect_read([permission, *needed], ep.model, pk, True)
            self.check(ep, "show", f"{kind} #{pk}", want, status)

    # -- the unrestricted view -------------------------------------------------------------
    def baseline(self, client: FlaskClient) -> None:
        """What each list and picker shows without any rule (the administrator's view), so
        the base filters of a screen (active records, the pool) count as they should."""
        for ep in self.endpoints:
            if ep.kind == "api" and ep.model is not None:
                for op, path in self.list_paths(ep):
                    response = client.get(path)
                    if response.status_code == 200:
                        self.base_lists[ep.name + op] = {int(i) for i in response.get_json()["ids"]}
            if ep.kind == "api" and ep.pickers:
                response = client.get(self.info_path(ep))
                if response.status_code == 200:
                    for info in response.get_json().get("add_columns", []):
                        if info.get("name") in ep.pickers:
                            self.base_options[(ep.name, info["name"])] = {
                                int(v["id"]) for v in info.get("values", [])
                            }
            if ep.kind == "screen" and ep.model is not None:
                view = ep.view
                path = f"{view.route_base}/list/?psize_{type(view).__name__}={PAGE_SIZE}"
                response = client.get(path)
                if response.status_code == 200:
                    self.base_lists[ep.name + "list"] = self.rows(
                        ep, response.get_data(as_text=True)
                    )
            if ep.kind == "screen" and ep.pickers:
                response = client.get(f"{ep.view.route_base}/add")
                if response.status_code == 200:
                    options = self.offered(response.get_data(as_text=True), client)
                    for column in ep.pickers:
                        self.base_options[(ep.name, column)] = options.get(column, set())
        for key, ids in list(self.base_lists.items()) + list(self.base_options.items()):
            if len(ids) >= PAGE_SIZE:
                raise MatrixError(f"authorization matrix: {key} holds {PAGE_SIZE} rows or more")


def relevant_models(app: Flask, endpoints: list[Endpoint]) -> list[str]:
    """Ruled models that enabled modules register or that a checked endpoint shows, with the
    models they hang from, parents first."""
    ruled = ruled_models()
    names: set[str] = set()
    with app.app_context():
        for _owner, models in app.extensions["crm"].collect("register_models"):
            for model in models:
                name = str(model.__name__)
                if ruled.get(name) is model:
                    names.add(name)
    for ep in endpoints:
        if ep.model:
            names.add(ep.model)
        names |= set(ep.pickers.values())
    return _ordered(names)


def run_matrix(
    app: Flask,
    roles: Iterable[str] | None = None,
    factories: dict[str, Factory] | None = None,
) -> MatrixReport:
    """Check every role (default: every role of :data:`ROLE_USERS`) on every endpoint of
    ``app``; ``factories`` add to :data:`FACTORIES`. Use it on the ``app`` fixture."""
    started = time.monotonic()
    role_names = list(roles or ROLE_USERS)
    endpoints = enumerate_endpoints(app)
    models = relevant_models(app, endpoints)
    makers = {**FACTORIES, **(factories or {})}
    check_factories(models, makers)
    owners = build_org(app, [ROLE_USERS[r] for r in role_names])
    records = create_records(app, models, owners, makers)
    facts = snapshot(app, models, records)
    report = MatrixReport(
        endpoints=[f"{ep.name} {ep.label}" for ep in endpoints],
        roles=role_names,
        models=models,
    )
    run = _Run(app, endpoints, records, facts, report)
    run.baseline(login_client(app, "Admin"))
    for role in role_names:
        actor = _load_actor(app, role, ROLE_USERS[role])
        run.run_role(actor, login_client(app, role))
    report.seconds = time.monotonic() - started
    return report
