"""工作流 → 我的审批: an approver's open tasks with approve / reject / send back; the page of one
approval with its steps and history; submitting a record; the 360° page's approvals panel."""

from __future__ import annotations

from typing import Any

from flask import abort, current_app, flash, g, redirect, render_template, request, url_for
from flask_appbuilder import BaseView, expose, has_access
from flask_babel import gettext as _
from sqlalchemy import select
from sqlalchemy.orm import Session, joinedload, selectinload

from ...db import model_class, session
from ...errors import CrmError
from ...org.display import display_user
from ...security.names import role_label
from ...web.write_errors import in_range
from . import engine
from . import steps as step_defs
from .models import (
    ACTIONS,
    STATUSES,
    ApprovalAction,
    ApprovalInstance,
    ApprovalProcess,
    ApprovalTask,
)

INBOX_VIEW = "ApprovalInboxView"
INBOX_MENU = "My approvals"
#: Open tasks shown in the inbox, oldest first.
INBOX_LIMIT = 200
#: Approvals of one record shown with their history on its page.
HISTORY_LIMIT = 10


def histories(s: Session, instances: list[ApprovalInstance]) -> dict[int, list[ApprovalAction]]:
    """The history of each of ``instances``, oldest line first (one query)."""
    out: dict[int, list[ApprovalAction]] = {i.id: [] for i in instances}
    if not out:
        return out
    rows = s.scalars(
        select(ApprovalAction)
        .where(ApprovalAction.instance_id.in_(list(out)))
        .options(joinedload(ApprovalAction.user))
        .order_by(ApprovalAction.id)
    )
    for row in rows:
        out[row.instance_id].append(row)
    return out


def record_approvals(s: Session, model: str, record_id: int) -> list[ApprovalInstance]:
    """The newest approvals of one record (served by ``ix_crm_approval_instance_record``)."""
    query = (
        select(ApprovalInstance)
        .where(ApprovalInstance.model == model, ApprovalInstance.record_id == record_id)
        .options(selectinload(ApprovalInstance.process), joinedload(ApprovalInstance.submitter))
        .order_by(ApprovalInstance.id.desc())
        .limit(HISTORY_LIMIT)
    )
    return list(s.scalars(query))


def step_label(step: dict[str, Any]) -> str:
    """How a step reads: its name, else who approves."""
    who = str(step_defs.KINDS.get(step["kind"], step["kind"]))
    targets = step["targets"]
    if step["kind"] == "role":
        targets = [role_label(t) for t in targets]
    if targets:
        who += "：" + "、".join(targets)
    return f"{step['name']}（{who}）" if step.get("name") else who


def _may_submit() -> bool:
    return bool(current_app.appbuilder.sm.has_access("can_submit", INBOX_VIEW))  # type: ignore[attr-defined]


def _context() -> dict[str, Any]:
    return {
        "statuses": STATUSES,
        "actions": ACTIONS,
        "display_user": display_user,
        "step_label": step_label,
    }


def customer_panel(customer: Any) -> str:
    """The 360° page's approvals: a "submit for approval" button per process the customer
    meets the entry conditions of, and its approvals with their history."""
    s = session()
    instances = record_approvals(s, "Customer", customer.id)
    return render_template(
        "crm/approvals/panel.html",
        customer=customer,
        instances=instances,
        history=histories(s, instances),
        startable=engine.startable(s, customer) if _may_submit() else [],
        locked=any(i.status == "pending" for i in instances),
        **_context(),
    )


class ApprovalInboxView(BaseView):
    """``/approvals/``: my open approval tasks; ``/approvals/<id>``: one approval."""

    route_base = "/approvals"
    default_view = "inbox"
    method_permission_name = {
        "inbox": "inbox",
        "show": "inbox",
        "decide": "decide",
        "submit": "submit",
    }

    def _instance(self, pk: int) -> ApprovalInstance:
        s = session()
        instance = (
            s.get(ApprovalInstance, pk) if in_range(ApprovalInstance.__table__.c.id, pk) else None
        )
        if instance is None or not self._may_see(s, instance):
            abort(404)
        return instance

    def _may_see(self, s: Session, instance: ApprovalInstance) -> bool:
        """The submitter, whoever was asked to approve it, and whoever may read the record."""
        if instance.submitter_id == g.user.id:
            return True
        asked = s.scalar(
            select(ApprovalTask.id).where(
                ApprovalTask.instance_id == instance.id, ApprovalTask.user_id == g.user.id
            )
        )
        if asked is not None:
            return True
        cls = model_class(instance.model)
        return cls is not None and s.get(cls, instance.record_id) is not None

    @expose("/")
    @has_access
    def inbox(self):  # type: ignore[no-untyped-def]
        s = session()
        tasks = list(
            s.scalars(
                select(ApprovalTask)
                .join(ApprovalInstance, ApprovalInstance.id == ApprovalTask.instance_id)
                .where(
                    ApprovalTask.user_id == g.user.id,
                    ApprovalTask.status == "pending",
                    ApprovalInstance.status == "pending",
                    ApprovalInstance.step_index == ApprovalTask.step_index,
                )
                .options(
                    joinedload(ApprovalTask.instance).joinedload(ApprovalInstance.process),
                    joinedload(ApprovalTask.instance).joinedload(ApprovalInstance.submitter),
                )
                .order_by(ApprovalTask.id)
                .limit(INBOX_LIMIT)
            ).unique()
        )
        return self.render_template("crm/approvals/inbox.html", tasks=tasks, **_context())

    @expose("/<int:instance_id>")
    @has_access
    def show(self, instance_id: int):  # type: ignore[no-untyped-def]
        s = session()
        instance = self._instance(instance_id)
        return self.render_template(
            "crm/approvals/detail.html",
            instance=instance,
            steps=instance.steps(),
            history=histories(s, [instance])[instance.id],
            tasks=engine.current_tasks(s, instance),
            mine=engine.task_of(s, instance, g.user),
            **_context(),
        )

    @expose("/<int:instance_id>/decide", methods=["POST"])
    @has_access
    def decide(self, instance_id: int):  # type: ignore[no-untyped-def]
        s = session()
        instance = self._instance(instance_id)
        if engine.task_of(s, instance, g.user) is None:
            abort(404)  # not (or no longer) an approver of this step
        try:
            engine.decide(
                s, instance, g.user, request.form.get("action", ""), request.form.get("comment", "")
            )
            s.commit()
        except CrmError as exc:
            s.rollback()
            flash(str(exc), "danger")
            return redirect(url_for("ApprovalInboxView.show", instance_id=instance_id))
        flash(_("Your decision is recorded."), "success")
        return redirect(url_for("ApprovalInboxView.inbox"))

    @expose("/submit", methods=["POST"])
    @has_access
    def submit(self):  # type: ignore[no-untyped-def]
        """Submit the record ``record_id`` to the process ``process`` (the user must be able to
        read the record, else 404)."""
        s = session()
        name = request.form.get("process", "")
        raw = request.form.get("record_id", "")
        process = s.scalar(select(ApprovalProcess).where(ApprovalProcess.name == name))
        cls = model_class(process.model) if process is not None else None
        pk = int(raw) if raw.isdigit() else None
        if cls is None or pk is None or not in_range(cls.__table__.c.id, pk):  # type: ignore[attr-defined]
            abort(404)
        record = s.get(cls, pk)
        if record is None:
            abort(404)
        try:
            instance = engine.start(s, record, name, g.user, request.form.get("comment", ""))
            s.commit()
        except CrmError as exc:
            s.rollback()
            flash(str(exc), "danger")
        else:
            flash(_("Submitted for approval: %(name)s.", name=instance.process), "success")
        if cls.__name__ == "Customer":
            return redirect(url_for("CustomerPageView.show", pk=pk))
        return redirect(url_for("ApprovalInboxView.inbox"))
