"""The admin's view of job runs."""

from __future__ import annotations

from flask_appbuilder import ModelView
from flask_babel import lazy_gettext as _l

from ..web.crud import CrmInterface
from ..web.display import display_datetime
from .models import JobRun


class JobRunView(ModelView):
    """Every scheduled job run, newest first, with its outcome, counts and error."""

    datamodel = CrmInterface(JobRun)
    route_base = "/jobruns"
    list_title = _l("Job runs")
    show_title = _l("Job run")
    base_permissions = ["can_list", "can_show"]
    label_columns = {
        "job_id": _l("Job"),
        "plugin": _l("Module"),
        "started_at": _l("Started"),
        "finished_at": _l("Finished"),
        "outcome": _l("Outcome"),
        "counts": _l("Counts"),
        "error": _l("Error"),
    }
    list_columns = ["job_id", "plugin", "started_at", "finished_at", "outcome", "counts"]
    show_columns = [*list_columns, "error"]
    search_columns = ["job_id", "plugin", "outcome", "started_at"]
    base_order = ("id", "desc")
    formatters_columns = {"started_at": display_datetime, "finished_at": display_datetime}
