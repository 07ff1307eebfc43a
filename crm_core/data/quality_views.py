"""The data-quality page (数据质量): the KPI, completeness per field and the records to fix."""

from __future__ import annotations

from flask import flash, redirect, request, url_for
from flask_appbuilder import BaseView, expose, has_access
from flask_babel import gettext as _

from .quality import ISSUE_LABELS, recompute
from .quality_figures import figures, readiness, worst_records

#: Records shown per page of the worst records.
PAGE_SIZE = 25
#: Customers a click on "recompute now" scores at most; the job does the rest.
REQUEST_LIMIT = 20_000


def _position(text: str | None) -> tuple[int, int] | None:
    """The ``after`` argument, ``<score>-<customer id>`` of the last row of a page."""
    if not text:
        return None
    score, _sep, pk = text.partition("-")
    if not (score.isdigit() and pk.isdigit()) or len(text) > 24:
        raise ValueError(text)
    return int(score), int(pk)


class DataQualityView(BaseView):
    """``/data-quality/``: the figures of the customers the user may read, worst first."""

    route_base = "/data-quality"
    default_view = "show"
    method_permission_name = {"show": "list", "recompute_now": "recompute"}

    @expose("/")
    @has_access
    def show(self):  # type: ignore[no-untyped-def]
        try:
            after = _position(request.args.get("after"))
        except ValueError:
            flash(_("after: not a position in the list; showing the first page."), "danger")
            after = None
        rows = worst_records(after, PAGE_SIZE + 1)
        more = len(rows) > PAGE_SIZE
        rows = rows[:PAGE_SIZE]
        last = rows[-1][0] if rows else None
        sm = self.appbuilder.sm
        return self.render_template(
            "crm/data_quality.html",
            figures=figures(),
            gate=readiness(),
            rows=rows,
            issue_labels=ISSUE_LABELS,
            next_after=f"{last.score}-{last.customer_id}" if more and last else None,
            paged=after is not None,
            may_edit=sm.has_access("can_edit", "CustomerView"),
            may_recompute=sm.has_access("can_recompute", "DataQualityView"),
        )

    @expose("/recompute", methods=["POST"])
    @has_access
    def recompute_now(self):  # type: ignore[no-untyped-def]
        """Score the customers that need it now, up to :data:`REQUEST_LIMIT`."""
        counts = recompute(limit=REQUEST_LIMIT)
        message = _(
            "Data quality recomputed: %(scored)s customers scored, %(removed)s archived ones "
            "removed.",
            scored=counts["scored"],
            removed=counts["removed"],
        )
        if counts["more"]:
            message += " " + _("More customers are waiting; the scheduled job scores the rest.")
        flash(message, "success")
        return redirect(url_for("DataQualityView.show"))
