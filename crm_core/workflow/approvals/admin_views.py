"""Administration → 审批流程: approval processes with their entry conditions and steps.

The steps are edited as rows (who approves, names, timeout, escalation), with blank rows to
add more; saving changed steps makes a new version, so approvals under way keep theirs.
"""

from __future__ import annotations

from typing import Any

from flask import abort, flash, redirect, request, url_for
from flask_appbuilder import BaseView, expose, has_access
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from sqlalchemy import func, select

from ...db import session
from ...lowcode import conditions as cond
from ...lowcode.validation import JOINS
from ...web.write_errors import in_range
from . import definitions
from . import steps as step_defs
from .models import ApprovalInstance, ApprovalProcess, ApprovalProcessVersion
from .views import step_label

#: Blank step rows offered below the process's steps.
BLANK_ROWS = 3
STEP_COLUMNS = ("name", "kind", "targets", "timeout_hours", "escalate_to")
CONDITION_HELP = _l(
    "One per line: field operator value, e.g. credit_limit gt 500000 or industry eq 制造业. "
    "Operators: eq ne gt ge lt le in contains starts_with empty not_empty. "
    "Empty: every record may be submitted."
)


def _steps_from_form() -> tuple[list[dict[str, Any]], list[str]]:
    """The step rows of the form (blank rows left out), and what cannot be read in them."""
    columns = {c: request.form.getlist(f"step_{c}") for c in STEP_COLUMNS}
    rows = max((len(v) for v in columns.values()), default=0)
    steps: list[dict[str, Any]] = []
    bad: list[str] = []
    for i in range(rows):
        raw = {c: (columns[c][i] if i < len(columns[c]) else "").strip() for c in STEP_COLUMNS}
        if not any(raw.values()):
            continue
        hours = raw["timeout_hours"]
        if hours and not hours.isdigit():
            bad.append(
                str(
                    _l(
                        "Step %(n)s: %(problem)s",
                        n=len(steps) + 1,
                        problem=_l("hours are a whole number."),
                    )
                )
            )
            raw["timeout_hours"] = ""
        steps.append(step_defs.normalised(raw))
    return steps, bad


class ApprovalProcessView(BaseView):
    """``/approvalprocesses/``: the processes; ``add`` and ``<id>/edit`` define one."""

    route_base = "/approvalprocesses"
    default_view = "processes"
    method_permission_name = {"processes": "list", "add": "add", "edit": "edit"}

    @expose("/")
    @has_access
    def processes(self):  # type: ignore[no-untyped-def]
        s = session()
        processes = list(s.scalars(select(ApprovalProcess).order_by(ApprovalProcess.name)))
        latest = select(
            ApprovalProcessVersion.process_id, func.max(ApprovalProcessVersion.number)
        ).group_by(ApprovalProcessVersion.process_id)
        waiting = (
            select(ApprovalInstance.process_id, func.count())
            .where(ApprovalInstance.status == "pending")
            .group_by(ApprovalInstance.process_id)
        )
        versions = {pid: number for pid, number in s.execute(latest)}
        pending = {pid: count for pid, count in s.execute(waiting)}
        return self.render_template(
            "crm/approvals/process_list.html",
            processes=processes,
            versions=versions,
            pending=pending,
            models=dict(definitions.process_models()),
        )

    @expose("/add", methods=["GET", "POST"])
    @has_access
    def add(self):  # type: ignore[no-untyped-def]
        return self._form(ApprovalProcess(active=True, join="all"))

    @expose("/<int:process_id>/edit", methods=["GET", "POST"])
    @has_access
    def edit(self, process_id: int):  # type: ignore[no-untyped-def]
        s = session()
        table = ApprovalProcess.__table__
        process = s.get(ApprovalProcess, process_id) if in_range(table.c.id, process_id) else None
        if process is None:
            abort(404)
        return self._form(process)

    def _form(self, process: ApprovalProcess):  # type: ignore[no-untyped-def]
        s = session()
        errors: dict[str, list[str]] = {}
        steps = definitions.current_steps(s, process)
        values = {
            "name": process.name or "",
            "model": process.model or "Customer",
            "label_zh": process.label_zh or "",
            "label_en": process.label_en or "",
            "active": process.active,
            "join": process.join or "all",
            "conditions": cond.as_text(process.conditions),
        }
        if request.method == "POST":
            values = {k: request.form.get(k, "").strip() for k in values}
            values["active"] = bool(request.form.get("active"))
            if process.id is not None:
                values["name"] = process.name
            steps, bad = _steps_from_form()
            errors = self._check(process, values, steps)
            if bad:
                errors.setdefault("steps", []).extend(bad)
            if not errors:
                self._save(process, values, steps)
                return redirect(url_for("ApprovalProcessView.processes"))
        return self.render_template(
            "crm/approvals/process_form.html",
            process=process,
            values=values,
            steps=steps + [dict.fromkeys(STEP_COLUMNS, "") for _ in range(BLANK_ROWS)],
            errors=errors,
            models=definitions.process_models(),
            joins=JOINS,
            kinds=step_defs.KINDS,
            condition_help=CONDITION_HELP,
            versions=self._versions(process),
            step_label=step_label,
        )

    def _versions(self, process: ApprovalProcess) -> list[ApprovalProcessVersion]:
        if process.id is None:
            return []
        query = (
            select(ApprovalProcessVersion)
            .where(ApprovalProcessVersion.process_id == process.id)
            .order_by(ApprovalProcessVersion.number.desc())
            .limit(20)
        )
        return list(session().scalars(query))

    def _check(
        self, process: ApprovalProcess, values: dict[str, Any], steps: list[dict[str, Any]]
    ) -> dict[str, list[str]]:
        s = session()
        errors: dict[str, list[str]] = {}
        conditions: list[cond.Condition] = []
        try:
            conditions = cond.parse(values["conditions"])
        except ValueError as exc:
            errors["conditions"] = [str(exc)]
        errors.update(
            {
                k: v
                for k, v in definitions.problems(s, values["model"], conditions, steps).items()
                if k not in errors
            }
        )
        for key in ("name", "label_zh"):
            if not values[key]:
                errors[key] = [_("This field is required.")]
        if values["join"] not in JOINS:
            values["join"] = "all"
        if process.id is None and values["name"]:
            taken = s.scalar(
                select(ApprovalProcess.id).where(ApprovalProcess.name == values["name"])
            )
            if taken is not None:
                errors["name"] = [_("Another approval process has this name.")]
        return errors

    def _save(
        self, process: ApprovalProcess, values: dict[str, Any], steps: list[dict[str, Any]]
    ) -> None:
        s = session()
        for key in ("name", "model", "label_zh", "join", "active"):
            setattr(process, key, values[key])
        process.label_en = values["label_en"] or None
        process.conditions = cond.as_data(cond.parse(values["conditions"])) or None
        version = definitions.save(s, process, steps)
        s.commit()
        if version is not None and version.number > 1:
            flash(
                _(
                    "Saved as version %(n)s; approvals under way keep the steps they started with.",
                    n=version.number,
                ),
                "success",
            )
        else:
            flash(_("Saved."), "success")
