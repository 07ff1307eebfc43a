"""客户 → 重复客户: the likely duplicate customers, a side-by-side comparison of each pair, and
the merge (合并) or dismissal (不是重复) of a pair."""

from __future__ import annotations

from typing import Any

from flask import abort, flash, g, redirect, request, url_for
from flask_appbuilder import BaseView, expose, has_access
from flask_babel import gettext as _
from sqlalchemy import func, select

from ..activities.models import Activity
from ..customers.models import Contact, Customer
from ..customers.views import CUSTOMER_LABELS
from ..db import session
from ..errors import CrmError
from ..jobs.runner import run_job
from ..lowcode.forms import choice_label, display
from ..lowcode.live import PREFIX, Label, field_of
from ..org.display import display_user
from ..security import masking
from ..web.display import display_datetime
from ..web.write_errors import in_range
from . import duplicate_pairs, merge
from .duplicate_pairs import JOB_ID, DuplicatePair

PAGE_SIZE = 25
LEFT, RIGHT = "left", "right"
FIELD_LABELS = {
    **CUSTOMER_LABELS,
    "owner_id": CUSTOMER_LABELS["owner"],
    "team_id": CUSTOMER_LABELS["team"],
}


def field_label(model: type, name: str) -> str:
    """How the screens name a customer field, custom fields by their label."""
    if name.startswith(PREFIX):
        defn = field_of(model, name)
        return str(Label(defn)) if defn is not None else name[len(PREFIX) :]
    return str(FIELD_LABELS.get(name, name))


def shown(customer: Customer, name: str) -> Any:
    """A field's value as this user may read it (sensitive values masked)."""
    if name.startswith(PREFIX):
        defn = field_of(Customer, name)
        raw = merge.value(customer, name)
        return display(defn)(raw) if defn is not None else raw
    if name == "owner_id":
        return display_user(customer.owner) if customer.owner is not None else ""
    if name == "team_id":
        return str(customer.team) if customer.team is not None else ""
    if name in masking.sensitive_fields(Customer):
        return masking.shown(customer, name)
    if name == "kind":
        return _("Company") if customer.kind == "company" else _("Person")
    value = choice_label(customer, name)
    return "" if value is None else value


def _count(column: Any, pk: int) -> int:
    query = select(func.count()).select_from(column.class_).where(column == pk)
    return int(session().scalar(query) or 0)


def _name(customer: Customer) -> str:
    return f"{customer.name}（{customer.code}）"


class DuplicatePairView(BaseView):
    """``/duplicates``: open pairs by score; ``/duplicates/<id>`` compares and merges one."""

    route_base = "/duplicates"
    default_view = "list"
    method_permission_name = {
        "list": "list",
        "compare": "list",
        "find": "find",
        "merge": "merge",
        "dismiss": "merge",
    }

    # ---------------------------------------------------------------------------- helpers

    def _pair(self, pk: int) -> tuple[DuplicatePair, Customer, Customer]:
        """The open pair ``pk`` and its customers, both readable by the user (else 404)."""
        pair = (
            session().get(DuplicatePair, pk) if in_range(DuplicatePair.__table__.c.id, pk) else None
        )
        if pair is None or pair.model != duplicate_pairs.MODEL:
            abort(404)
        left = session().get(Customer, pair.left_id)
        right = session().get(Customer, pair.right_id)
        if left is None or right is None:
            abort(404)
        return pair, left, right

    def _closed(self, pair: DuplicatePair, left: Customer, right: Customer) -> Any:
        """A redirect to the list when the pair was decided or a side is archived, else None."""
        if pair.status == "open" and left.active and right.active:
            return None
        flash(_("This pair has already been dealt with."), "info")
        return redirect(url_for("DuplicatePairView.list"))

    # ---------------------------------------------------------------------------- screens

    @expose("/")
    @has_access
    def list(self):  # type: ignore[no-untyped-def]
        """The open pairs the user may read both customers of, highest score first."""
        after = None
        raw = request.args.get("after", "")
        score, _dot, pk = raw.partition(".")
        if score.isdigit() and pk.isdigit() and in_range(DuplicatePair.__table__.c.id, int(pk)):
            after = (int(score), int(pk))
        pairs = duplicate_pairs.open_pairs(after, PAGE_SIZE + 1)
        more = len(pairs) > PAGE_SIZE
        pairs = pairs[:PAGE_SIZE]
        ids = {p.left_id for p in pairs} | {p.right_id for p in pairs}
        customers = {
            c.id: c for c in session().scalars(select(Customer).where(Customer.id.in_(ids)))
        }
        rows = [
            (p, customers[p.left_id], customers[p.right_id])
            for p in pairs
            if p.left_id in customers and p.right_id in customers
        ]
        next_after = f"{pairs[-1].score}.{pairs[-1].id}" if more else None
        return self.render_template(
            "crm/duplicate_pairs.html",
            rows=rows,
            next_after=next_after,
            first_page=after is None,
            reason_text=self._reasons,
            display_datetime=display_datetime,
            may_find=self.appbuilder.sm.has_access("can_find", self.class_permission_name),
        )

    def _reasons(self, pair: DuplicatePair) -> str:
        parts = []
        for reason in pair.reasons or []:
            label = field_label(Customer, str(reason.get("field", "")))
            parts.append(f"{reason.get('rule', '')}（{label} {reason.get('score', '')}）")
        return "、".join(parts)

    @expose("/find", methods=["POST"])
    @has_access
    def find(self):  # type: ignore[no-untyped-def]
        """Run the duplicate finder now (the scheduled job, logged as a run)."""
        run = run_job(JOB_ID)
        if run is None or run.outcome != "ok":
            flash(_("Finding duplicates failed; the error is in the job runs."), "danger")
        else:
            counts = run.counts or {}
            flash(
                _(
                    "Duplicates checked: %(found)s pairs found, %(new)s of them new.",
                    found=counts.get("found", 0),
                    new=counts.get("new", 0),
                ),
                "success",
            )
        return redirect(url_for("DuplicatePairView.list"))

    @expose("/<int:pair_id>")
    @has_access
    def compare(self, pair_id: int):  # type: ignore[no-untyped-def]
        """Both customers side by side, with a choice per differing field."""
        pair, left, right = self._pair(pair_id)
        closed = self._closed(pair, left, right)
        if closed is not None:
            return closed
        names = [*merge.FIELDS, *merge.custom_fields()]
        differing = set(merge.differing(left, right))
        default = merge.chosen_values(left, right)  # left surviving, gaps filled from the right
        rows = [
            {
                "name": name,
                "label": field_label(Customer, name),
                "left": shown(left, name),
                "right": shown(right, name),
                "differs": name in differing,
                "keep": RIGHT if name in default else LEFT,
            }
            for name in names
            if name in differing or not merge._empty(merge.value(left, name))
        ]
        counts = {
            side: {
                "contacts": _count(Contact.customer_id, c.id),
                "activities": _count(Activity.customer_id, c.id),
            }
            for side, c in ((LEFT, left), (RIGHT, right))
        }
        return self.render_template(
            "crm/merge_compare.html",
            pair=pair,
            left=left,
            right=right,
            rows=rows,
            counts=counts,
            reasons=self._reasons(pair),
            display_user=display_user,
            may_merge=self.appbuilder.sm.has_access("can_merge", self.class_permission_name),
        )

    @expose("/<int:pair_id>/merge", methods=["POST"])
    @has_access
    def merge(self, pair_id: int):  # type: ignore[no-untyped-def]
        """Merge the pair: the chosen survivor keeps the chosen values and every record."""
        pair, left, right = self._pair(pair_id)
        closed = self._closed(pair, left, right)
        if closed is not None:
            return closed
        side = request.form.get("survivor", LEFT)
        if side not in (LEFT, RIGHT):
            flash(_("Choose which customer remains."), "danger")
            return redirect(url_for("DuplicatePairView.compare", pair_id=pair_id))
        survivor, loser = (left, right) if side == LEFT else (right, left)
        keep = {}
        for name in merge.differing(left, right):
            chosen = request.form.get(f"keep__{name}")
            if chosen in (LEFT, RIGHT):
                keep[name] = merge.SURVIVOR if chosen == side else merge.LOSER
        try:
            merge.merge_customers(survivor, loser, keep, user_id=g.user.id)
            session().commit()
        except CrmError as exc:
            session().rollback()
            flash(str(exc), "danger")
            return redirect(url_for("DuplicatePairView.compare", pair_id=pair_id))
        flash(
            _(
                "%(loser)s has been merged into %(survivor)s.",
                loser=_name(loser),
                survivor=_name(survivor),
            ),
            "success",
        )
        return redirect(url_for("CustomerPageView.show", pk=survivor.id))

    @expose("/<int:pair_id>/dismiss", methods=["POST"])
    @has_access
    def dismiss(self, pair_id: int):  # type: ignore[no-untyped-def]
        """Mark the pair as not a duplicate; the finder never proposes it again."""
        pair, left, right = self._pair(pair_id)
        closed = self._closed(pair, left, right)
        if closed is not None:
            return closed
        duplicate_pairs.decide(pair, "dismissed", g.user.id)
        session().commit()
        flash(
            _(
                "Marked as not a duplicate: %(left)s and %(right)s.",
                left=left.name,
                right=right.name,
            ),
            "success",
        )
        return redirect(url_for("DuplicatePairView.list"))
