"""The start page: the signed-in user's customers, the shared pool and recent follow-ups."""

from __future__ import annotations

from flask import g
from flask_appbuilder import IndexView, expose
from sqlalchemy import func, select

from ..activities.models import Activity
from ..customers.models import Customer
from ..db import session


class HomeView(IndexView):
    """Counts come from indexed columns only, so the page stays fast at a million customers."""

    index_template = "crm/index.html"

    @expose("/")
    def index(self):  # type: ignore[no-untyped-def]
        self.update_redirect()
        user = getattr(g, "user", None)
        if user is None or not user.is_authenticated:
            return self.render_template(self.index_template, appbuilder=self.appbuilder)
        s = session()
        mine = s.scalar(
            select(func.count())
            .select_from(Customer)
            .where(Customer.owner_id == user.id, Customer.active.is_(True))
        )
        pool = s.scalar(
            select(func.count())
            .select_from(Customer)
            .where(Customer.owner_id.is_(None), Customer.active.is_(True))
        )
        recent = s.scalars(
            select(Activity)
            .where(Activity.owner_id == user.id)
            .order_by(Activity.occurred_at.desc())
            .limit(10)
        ).all()
        return self.render_template(
            self.index_template, appbuilder=self.appbuilder, mine=mine, pool=pool, recent=recent
        )
