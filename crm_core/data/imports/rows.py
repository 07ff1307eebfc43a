"""Turning one batch of rows into checked records, each row's problems named.

Every row goes through what a record typed on a form goes through, in the importing user's
rights: the model's own checks (phones to E.164, e-mail addresses), picklists, custom fields,
admins' validation and duplicate rules, record rules and modules' ``validate_change`` vetoes. A
row with a problem is left out of the batch with the problem recorded against its line and
field; the others are written together. The duplicate rules also compare the rows of the file
among themselves, so a customer twice in the file is caught before the database sees it.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from flask import current_app
from flask_appbuilder.security.sqla.models import User
from flask_babel import gettext as _
from sqlalchemy import inspect, or_, select
from sqlalchemy.orm import Session

from ...errors import CrmError, FieldError
from ...events.outbox import _changes
from ...lowcode import duplicates, picklists, validation
from ...lowcode import fields as custom_fields
from ...lowcode.fields import custom_column
from ...lowcode.live import PREFIX
from ...security import rules
from ...specs import Change
from . import bulk, cells, quiet
from .source import Row
from .targets import ImportField


@dataclass
class RowResult:
    """What became of one row: ``created``, ``updated``, ``unchanged`` or ``failed``."""

    row: Row
    outcome: str = "failed"
    record: Any = None
    errors: list[tuple[str | None, str]] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


def _messages(exc: Exception) -> list[tuple[str | None, str]]:
    if isinstance(exc, FieldError):
        return [(name, " ".join(str(m) for m in msgs)) for name, msgs in exc.messages.items()]
    return [(None, str(exc))]


class RowChecker:
    """Checks the rows of one job, batch after batch, remembering what earlier batches of the
    same run brought (keys and duplicate-rule values already seen in the file)."""

    def __init__(
        self,
        session: Session,
        model: type,
        fields: list[ImportField],
        mapping: dict[int, str],
        key: str | None,
        mode: str,
        user: Any,
    ) -> None:
        self.session = session
        self.model = model
        self.prefix = getattr(model, "__crm_event__", None)
        self.by_key = {f.key: f for f in fields}
        self.mapping = {pos: self.by_key[name] for pos, name in mapping.items()}
        self.key = self.by_key.get(key) if key else None
        self.mode = mode
        self.user = user
        self.custom = custom_column(model)
        #: What one run reads once: field definitions, validation and duplicate rules.
        self.rule_cache: dict[str, list[Any]] = {}
        self.validation_cache: dict[str, list[Any]] = {}
        self.duplicate_cache: dict[str, list[Any]] = {}
        self.duplicate_rules: list[Any] | None = None
        self.exact_rules = [
            r
            for r in validation.active_rows(session, duplicates.DuplicateRule, model.__name__)
            if r.method == "exact"
        ]
        #: Per exact duplicate rule: value → the line it was first seen on in this file.
        self.seen: dict[int, dict[str, tuple[int, Any]]] = {r.id: {} for r in self.exact_rules}
        #: Keys of rows a dry run would create: a later row with the same key updates it.
        self.would_create: dict[Any, int] = {}
        self._links: dict[str, dict[str, int | None]] = {}
        self._picklists: dict[str, dict[str, str]] = {}
        self._users: dict[str, int | None] | None = None
        self.registry = current_app.extensions["crm"]
        #: A dry run: nothing is written, so a key repeated in the file finds no record.
        self.dry_run = False
        #: New records written with Core statements (see :mod:`.bulk`).
        self.bulk = bulk.eligible(model)
        #: Whether any module vets writes (``validate_change``): else no change is built.
        self.vetoes = bool(self.registry.pm.hook.validate_change.get_hookimpls())
        self.spec = rules._spec_or_none(model)
        self.validators = quiet.validators(model)
        #: The file's columns, read a column at a time (:mod:`.cells`).
        self.columns = [
            cells.column(position, f, self._error_name(f), self._picklist_value)
            for position, f in self.mapping.items()
        ]
        #: The record rules of this call of :meth:`check` (read once per batch).
        self.current_rules: Any = None
        #: ``id()`` of this call's stand-ins of records the rows leave unchanged.
        self.stand_ins: set[int] = set()

    # ------------------------------------------------------------------ cells

    def _picklist_value(self, f: ImportField, text: str) -> str:
        assert f.picklist
        known = self._picklists.get(f.picklist)
        if known is None:
            known = {}
            for option in picklists.values_of(self.session, f.picklist):
                for word in (option.value, option.label_zh, option.label_en):
                    if word:
                        known.setdefault(word.strip().lower(), option.value)
            self._picklists[f.picklist] = known
        return known.get(text.strip().lower(), text.strip())

    def _error_name(self, f: ImportField) -> str:
        if f.kind == "custom":
            return f"{self.custom}.{f.key[len(PREFIX) :]}"
        return f.link_column or f.key

    # ------------------------------------------------------------------ links

    def _user_ids(self) -> dict[str, int | None]:
        """Users by user name, e-mail or name as screens show it (王芳); a name two users
        share finds neither."""
        if self._users is None:
            from ...org.display import display_user

            found: dict[str, set[int]] = {}
            for user in self.session.scalars(select(User)):
                for word in (user.username, user.email, display_user(user)):
                    if word:
                        found.setdefault(word.strip().lower(), set()).add(user.id)
            self._users = {
                w: next(iter(ids)) if len(ids) == 1 else None for w, ids in found.items()
            }
        return self._users

    def _resolve_links(self, parsed: list[tuple[RowResult, dict[str, Any]]]) -> None:
        for f in {f.key: f for f in self.mapping.values() if f.kind == "link"}.values():
            cache = self._links.setdefault(f.key, {})
            wanted = {v[f.key] for _r, v in parsed if v.get(f.key) and v[f.key] not in cache}
            if not wanted:
                continue
            if f.target is User:
                users = self._user_ids()
                for text in wanted:
                    cache[text] = users.get(text.lower())
                continue
            cache.update(self._lookup(f.target, wanted))

    def _lookup(self, target: Any, wanted: set[str]) -> dict[str, int | None]:
        """Records of ``target`` by code or by name, as this user may see them; a name two
        records share finds neither."""
        pk = inspect(target).primary_key[0]
        columns = [c for c in ("code", "name", "username") if c in inspect(target).columns]
        found: dict[str, int | None] = dict.fromkeys(wanted)
        names = list(wanted)
        for start in range(0, len(names), 500):
            chunk = names[start : start + 500]
            conditions = [getattr(target, c).in_(chunk) for c in columns]
            query = select(pk, *(getattr(target, c) for c in columns)).where(or_(*conditions))
            counts: dict[str, int] = {}
            for row in self.session.execute(query):
                for text in {str(v) for v in row[1:] if v is not None} & wanted:
                    counts[text] = counts.get(text, 0) + 1
                    found[text] = row[0] if counts[text] == 1 else None
        return found

    # ------------------------------------------------------------------ existing records

    def _key_column(self) -> Any:
        assert self.key is not None
        if self.key.kind == "custom":
            name = self.key.key[len(PREFIX) :]
            return getattr(self.model, self.custom or "custom")[name].as_string()
        return getattr(self.model, self.key.key)

    def _normalised_key(self, value: Any) -> Any:
        """The key as the record stores it (a phone in E.164), for matching."""
        assert self.key is not None
        if value is None or self.key.kind != "column":
            return value
        validator: Any = quiet.validator(self.model, self.key.key)
        if validator is None:
            return value
        try:
            return validator(None, self.key.key, value)
        except (FieldError, AttributeError, TypeError):
            return value

    def _matching(self, keys: list[Any], *selected: Any) -> Iterator[Any]:
        """Rows of ``selected`` for the records whose key is one of ``keys``, 500 keys a query,
        active records first, whoever owns them (a hidden one is reported, never duplicated)."""
        assert self.key is not None
        column = self._key_column()
        with rules.unrestricted(), self.session.no_autoflush:
            for start in range(0, len(keys), 500):
                chunk = [
                    str(k) if self.key.kind == "custom" else k for k in keys[start : start + 500]
                ]
                query: Any = select(*selected).where(column.in_(chunk))
                if hasattr(self.model, "active"):
                    query = query.order_by(self.model.active.desc())  # type: ignore[attr-defined]
                yield from self.session.execute(query)

    def _existing(self, keys: list[Any]) -> dict[Any, Any]:
        """Records matching ``keys`` (see :meth:`_matching`), by key."""
        if self.key is None or not keys:
            return {}
        out: dict[Any, Any] = {}
        for (record,) in self._matching(keys, self.model):
            out.setdefault(self._record_key(record), record)
        return out

    def _matched(
        self, parsed: list[tuple[RowResult, dict[str, Any]]], keys: dict[int, Any]
    ) -> dict[Any, Any]:
        """The records the batch's keys find. A row that would change nothing in its record
        (shown by comparing its values with the record's stored columns) gets a stand-in
        instead: a transient copy holding those columns (see :meth:`_unchanged`); the others
        get their records, loaded into the session to be changed."""
        wanted = [k for k in dict.fromkeys(keys.values()) if k is not None]
        self.stand_ins = set()
        if not self._compares_plainly() or not wanted:
            return self._existing(wanted)
        stand_ins = self._stored(wanted)
        times: dict[Any, int] = {}
        for key in keys.values():
            times[key] = times.get(key, 0) + 1
        found: dict[Any, Any] = {}
        for r, values in parsed:
            key = keys.get(r.row.number)
            obj = stand_ins.get(key)
            if obj is not None and times[key] == 1 and self._unchanged(obj, values):
                found[key] = obj
        self.stand_ins = {id(obj) for obj in found.values()}
        rest = [k for k in stand_ins if k not in found]  # a key without a record has none
        found.update(self._existing(rest))
        return found

    def _compares_plainly(self) -> bool:
        """Whether unchanged rows may be told from their stored columns alone: records
        written with Core statements (no encrypted values), matched by a column or custom
        value, no record rules limiting what the user may change, file-duplicate rules on
        the record's own values."""
        current = self.current_rules
        return (
            self.bulk
            and self.mode != "create"
            and not (isinstance(current, rules.UserRules) and self.spec)
            and all("." not in rule.field for rule in self.exact_rules)
        )

    def _stored(self, keys: list[Any]) -> dict[Any, Any]:
        """Stand-ins of the records matching ``keys`` (as :meth:`_existing` finds them), built
        from their stored columns without loading them into the session."""
        mapper: Any = inspect(self.model)
        props = list(mapper.column_attrs)
        names = [prop.key for prop in props]
        out: dict[Any, Any] = {}
        for row in self._matching(keys, *(prop.columns[0] for prop in props)):
            obj = quiet.new_object(self.model)
            obj.__dict__.update(zip(names, row, strict=True))
            out.setdefault(self._record_key(obj), obj)
        return out

    def _unchanged(self, obj: Any, values: dict[str, Any]) -> bool:
        """Whether assigning ``values`` (as :meth:`_assign` does) would leave the record
        whose stored columns ``obj`` holds as it is; ``False`` when in doubt."""
        found = obj.__dict__
        custom = (found.get(self.custom) or {}) if self.custom else {}
        for key, value in values.items():
            if value is None:
                continue
            f = self.by_key[key]
            if f.kind == "custom":
                if custom.get(key[len(PREFIX) :]) != value:
                    return False
            elif f.kind == "link":
                target = self._links[f.key].get(value)
                if target is None or found.get(f.link_column or "") != target:
                    return False
            else:
                check = self.validators.get(key)
                if check is not None:
                    try:
                        value = check(obj, key, value)
                    except Exception:  # the record's own write reports it
                        return False
                if found.get(key) != value:
                    return False
        return True

    def _record_key(self, record: Any) -> Any:
        assert self.key is not None
        if self.key.kind == "custom":
            value = (getattr(record, self.custom or "custom") or {}).get(
                self.key.key[len(PREFIX) :]
            )
            return None if value is None else str(value)
        return getattr(record, self.key.key)

    # ------------------------------------------------------------------ one batch

    def check(self, rows: list[Row]) -> tuple[list[RowResult], list[Row]]:
        """Check ``rows`` in order: the results of the rows checked, and the rows left for
        another call. A row whose key a new record of this call already claimed waits for the
        next call, once that record is written, so it updates it instead of doubling it.

        New records are in each result's ``record``: added to the session when the model is
        written through the ORM, built quietly for :mod:`.bulk` otherwise. Changed records are
        in the session."""
        results = [RowResult(row) for row in rows]
        read = cells.read(self.columns, rows, [r.errors for r in results])
        parsed = list(zip(results, read, strict=True))
        self.current_rules = rules.current_rules()
        self._resolve_links(parsed)
        keys: dict[int, Any] = {}
        if self.key is not None:
            for r, values in parsed:
                keys[r.row.number] = self._normalised_key(values.get(self.key.key))
        existing = self._matched(parsed, keys)
        claimed: set[Any] = set()
        fresh: list[tuple[RowResult, Any]] = []
        for index, (r, values) in enumerate(parsed):
            key = keys.get(r.row.number)
            if key is not None and key in claimed:
                self._settle(fresh)
                return results[:index], rows[index:]
            if r.errors:
                continue
            if self.key is not None and key is None and self.mode == "update":
                r.errors.append((self.key.key, _("No value to find the record by.")))
                continue
            record = existing.get(key) if key is not None else None
            obj = self._check_row(r, values, record, key)
            if obj is not None and record is None:
                fresh.append((r, obj))
                if key is not None:
                    claimed.add(key)
        self._settle(fresh)
        return results, []

    def _check_row(self, r: RowResult, values: dict[str, Any], record: Any, key: Any) -> Any:
        new = record is None
        key_name = self._error_name(self.key) if self.key else None
        if new and self.mode == "update":
            r.errors.append((key_name, _("No record with this value exists.")))
            return None
        if not new and self.mode == "create":
            r.errors.append((key_name, _("A record with this value already exists.")))
            return None
        if not new and not self._may_change(record, r):
            return None
        token = ("key", key) if key is not None else ("row", r.row.number)
        if not new and id(record) in self.stand_ins:
            r.outcome, r.record = "unchanged", record  # the row says what the record has
            self._remember(record, r, token)
            return record
        if new:
            obj = quiet.new_object(self.model) if self.bulk else self.model()
            if not self.bulk:
                self.session.add(obj)  # in the session, so links resolve for the checks
        else:
            obj = record
        try:
            if new and self.bulk:
                self._assign_quietly(obj, values, r)
            else:
                self._assign(obj, values, r, new)
            if r.errors:
                raise _Refused
            if not new and not self.session.is_modified(obj):
                r.outcome, r.record = "unchanged", obj  # the row says what the record has
                self._remember(obj, r, token)
                return obj
            self._run_checks(obj, new, r, token)
        except _Refused:
            self._forget(obj, new)
            return None
        except CrmError as exc:
            r.errors.extend(_messages(exc))
            self._forget(obj, new)
            return None
        if new:
            repeated = self.dry_run and key is not None and key in self.would_create
            r.outcome = "updated" if repeated else "created"
        else:
            r.outcome = "updated" if self.session.is_modified(obj) else "unchanged"
        r.record = obj
        self._remember(obj, r, token)
        return obj

    def _settle(self, fresh: list[tuple[RowResult, Any]]) -> None:
        """The database's duplicate rules for the batch's new records at once (one query per
        rule), then modules' vetoes; what is refused leaves the batch."""
        if not fresh:
            return
        with self.session.no_autoflush:
            if self.duplicate_rules is None:
                self.duplicate_rules = validation.active_rows(
                    self.session, duplicates.DuplicateRule, self.model.__name__
                )
            for rule in self.duplicate_rules:
                found = duplicates.find_many(self.session, [obj for _r, obj in fresh], rule)
                for (r, _obj), matches in zip(fresh, found, strict=True):
                    for match in matches:
                        if match.block:
                            name = validation.error_key(self.model, rule.field)
                            r.errors.append((name, duplicates.message(match)))
                        else:
                            r.warnings.append(duplicates.message(match))
            for r, obj in fresh:
                if not r.errors:
                    self._veto(obj, "create", r)
        for r, obj in fresh:
            if r.errors:
                r.outcome, r.record = "failed", None
                self._forget(obj, True)
            elif r.outcome == "created" and self.key is not None:
                key = (
                    self._record_key(obj)
                    if self.key.kind != "column"
                    else obj.__dict__.get(self.key.key)
                )
                if key is not None:
                    self.would_create.setdefault(key, r.row.number)

    def _veto(self, obj: Any, operation: str, r: RowResult) -> None:
        if not self.prefix or not self.vetoes:
            return
        if operation == "create":
            changes = {k: (None, v) for k, v in quiet.values(obj).items() if v is not None}
        else:
            changes = _changes(obj)
        change = Change(model=self.prefix, operation=operation, record=obj, changes=changes)
        for _owner, message in self.registry.collect("validate_change", change=change):
            if message:
                r.errors.append((None, str(message)))
                return

    def _may_change(self, record: Any, r: RowResult) -> bool:
        current = self.current_rules
        if isinstance(current, rules.UserRules) and self.spec and not current.may_write(record):
            r.errors.append(
                (
                    self._error_name(self.key),  # type: ignore[arg-type]
                    _(
                        "This record exists and you may not change it (%(record)s).",
                        record=record,
                    ),
                )
            )
            return False
        return True

    def _assign(self, obj: Any, values: dict[str, Any], r: RowResult, new: bool) -> None:
        custom_values = dict(getattr(obj, self.custom) or {}) if self.custom else {}
        custom_changed = False
        for key, value in values.items():
            f = self.by_key[key]
            try:
                if f.kind == "custom":
                    name = key[len(PREFIX) :]
                    if value is None:
                        continue  # a blank cell keeps what the record has
                    if custom_values.get(name) != value:
                        custom_values[name] = value
                        custom_changed = True
                elif f.kind == "link":
                    if value is None:
                        continue
                    target = self._links[f.key].get(value)
                    if target is None:
                        r.errors.append(
                            (f.link_column, _("No record found for %(value)s.", value=value))
                        )
                        continue
                    if getattr(obj, f.link_column or "") != target:
                        setattr(obj, f.link_column or "", target)
                elif value is not None:
                    validator = quiet.validator(self.model, key)
                    if validator is not None:
                        value = validator(obj, key, value)  # compared as it would be stored
                    if getattr(obj, key) != value:
                        setattr(obj, key, value)
            except FieldError as exc:
                r.errors.extend(_messages(exc))
        if custom_changed and self.custom:
            setattr(obj, self.custom, custom_values)
        if new:
            for f in self.by_key.values():
                if (
                    f.required
                    and f.kind != "custom"
                    and getattr(obj, f.link_column or f.key) is None
                ):
                    name = f.link_column or f.key
                    if not any(e[0] == name for e in r.errors):
                        r.errors.append((name, _("This field is required.")))
            spec = self.spec
            if spec and spec.owner and getattr(obj, spec.owner) is None and self.user is not None:
                setattr(obj, spec.owner, self.user.id)

    def _assign_quietly(self, obj: Any, values: dict[str, Any], r: RowResult) -> None:
        """A new record's values for :mod:`.bulk`: validators run, no attribute events."""
        custom_values: dict[str, Any] = {}
        found = obj.__dict__
        validators = self.validators
        for key, value in values.items():
            if value is None:
                continue
            f = self.by_key[key]
            try:
                if f.kind == "custom":
                    custom_values[key[len(PREFIX) :]] = value
                elif f.kind == "link":
                    target_id = self._links[f.key].get(value)
                    if target_id is None:
                        r.errors.append(
                            (f.link_column, _("No record found for %(value)s.", value=value))
                        )
                        continue
                    quiet.put(obj, f.link_column or "", target_id)
                    if f.target is not User:
                        quiet.link(obj, f.key, self._linked(f.target, target_id))
                else:
                    check = validators.get(key)
                    found[key] = value if check is None else check(obj, key, value)
            except FieldError as exc:
                r.errors.extend(_messages(exc))
        if self.custom:
            found[self.custom] = custom_values or None
        spec = self.spec
        if spec and spec.owner and found.get(spec.owner) is None and self.user is not None:
            found[spec.owner] = self.user.id
        problems = quiet.complete(obj)
        if problems:
            r.errors.extend(e for e in problems if not any(x[0] == e[0] for x in r.errors))

    def _linked(self, target: Any, pk: int) -> Any:
        with self.session.no_autoflush:
            return self.session.get(target, pk)

    def _run_checks(self, obj: Any, new: bool, r: RowResult, token: Any) -> None:
        session = self.session
        plain = new and self.bulk
        with session.no_autoflush:
            if plain and self.custom:
                if self._custom_to_check(obj):
                    obj.__dict__[self.custom] = (
                        custom_fields.clean_values(
                            session,
                            self.model,
                            obj.__dict__.get(self.custom),
                            {},
                            True,
                            self.rule_cache,
                        )
                        or None
                    )
            else:
                custom_fields.clean(session, obj, new, self.rule_cache)
            picklists.check(session, obj, new)
            validation.check(session, obj, new, self.validation_cache)
            self._file_duplicates(obj, r, token)
            current = self.current_rules
            spec = self.spec
            if (
                isinstance(current, rules.UserRules)
                and spec
                and not current.may_write(obj, plain=plain)
            ):
                raise FieldError(
                    {
                        spec.owner or "owner_id": [
                            _("You may not give this record to that owner or team.")
                        ]
                    }
                )
            if not new:
                duplicates.check(session, obj, new, self.duplicate_cache)
                r.warnings.extend(duplicates.pop_warnings(session))
                self._veto(obj, "update", r)
                if r.errors:
                    raise _Refused

    def _custom_to_check(self, obj: Any) -> bool:
        """Whether a quietly built record's custom values need their checks: it has some,
        or its model has field definitions (defaults, required fields), or they are unread."""
        if obj.__dict__.get(self.custom):
            return True
        definitions = self.rule_cache.get(self.model.__name__)
        return definitions is None or bool(definitions)

    def _file_duplicates(self, obj: Any, r: RowResult, token: Any) -> None:
        """The exact duplicate rules between rows of the file (the database check cannot see
        rows of the same batch)."""
        from ...lowcode import conditions as cond

        errors: dict[str, list[str]] = {}
        for rule in self.exact_rules:
            value = cond.value_of(obj, rule.field)
            if value in (None, "", []):
                continue
            first, record = self.seen[rule.id].get(str(value), (None, None))
            if first is None or record == token:
                continue
            message = _("Same as row %(row)s of this file (%(rule)s).", row=first, rule=rule.name)
            if rule.action == "block":
                errors.setdefault(validation.error_key(self.model, rule.field), []).append(message)
            else:
                r.warnings.append(message)
        if errors:
            raise FieldError(errors)

    def _remember(self, obj: Any, r: RowResult, token: Any) -> None:
        from ...lowcode import conditions as cond

        for rule in self.exact_rules:
            value = cond.value_of(obj, rule.field)
            if value not in (None, "", []):
                self.seen[rule.id].setdefault(str(value), (r.row.number, token))

    def committed(self) -> None:
        """The batch is in the database: its duplicate rules see those rows from now on."""
        for seen in self.seen.values():
            seen.clear()

    def _forget(self, obj: Any, new: bool) -> None:
        if new:
            if obj in self.session:
                self.session.expunge(obj)
        else:
            self.session.expire(obj)


class _Refused(Exception):
    """A row already has problems: skip the remaining checks."""
