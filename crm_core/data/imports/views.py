"""The import screens (数据导入): upload → column mapping → check → import, with progress.

A check or an import runs in a thread of the web process, so the page stays responsive and
shows its progress; should the process stop, the scheduler's ``core.imports`` job finishes the
import from its checkpoint (:mod:`.resume`). Users see and start their own imports, in their own
rights (record rules apply to every row); admins see everyone's.
"""

from __future__ import annotations

import logging
import tempfile
import threading
from pathlib import Path
from typing import Any

from flask import (
    Response,
    abort,
    current_app,
    flash,
    g,
    jsonify,
    redirect,
    request,
    stream_with_context,
    url_for,
)
from flask_appbuilder import BaseView, expose, has_access
from flask_babel import gettext as _
from sqlalchemy import select

from ...db import session as current_session
from ...errors import CrmError, FieldError
from . import engine
from . import mapping as column_mapping
from .models import MODES, STATUSES, ImportJob, ImportProblem
from .report import error_report_csv
from .source import Source, SourceError, file_format
from .targets import fields_of, specs

log = logging.getLogger(__name__)
#: Largest file accepted from the screen (the command line takes any size).
MAX_UPLOAD = 100 * 1024 * 1024
PROBLEMS_SHOWN = 200
SAMPLE_ROWS = 3


def _run_in_background(kind: str, job_id: int) -> None:
    """Run a check or an import of ``job_id`` in a thread of this process."""
    app = current_app._get_current_object()  # type: ignore[attr-defined]

    def work() -> None:
        with app.app_context():
            try:
                if kind == "check":
                    engine.check_job(job_id, claimed=True)
                else:
                    engine.run_job(job_id)
            except CrmError as exc:
                log.warning("import %s: %s", job_id, exc)
            except Exception:  # noqa: BLE001 - recorded on the job; the thread must not die loud
                log.exception("import %s stopped", job_id)
            finally:
                current_session().close()

    if current_app.config.get("CRM_IMPORT_INLINE"):
        work()  # tests and single-threaded servers: run before answering
        return
    threading.Thread(target=work, name=f"crm-import-{job_id}", daemon=True).start()


class ImportView(BaseView):
    """``/imports/``: the user's imports, and the steps of a new one."""

    route_base = "/imports"
    default_view = "list"
    method_permission_name = {
        "list": "list",
        "show": "list",
        "progress": "list",
        "report": "list",
        "new": "add",
        "mapping": "add",
        "check": "add",
        "start": "add",
    }

    # ------------------------------------------------------------------ helpers

    def _models(self) -> dict[str, Any]:
        """The importable models this user may add records of."""
        sm = self.appbuilder.sm
        allowed = {}
        for name, spec in specs().items():
            views = [
                v
                for v in self.appbuilder.baseviews
                if getattr(getattr(v, "datamodel", None), "obj", None) is spec.model
            ]
            if any(sm.has_access("can_add", v.class_permission_name) for v in views):
                allowed[name] = spec
        return allowed

    def _job(self, job_id: int) -> ImportJob:
        job = current_session().get(ImportJob, job_id)
        if job is None:
            abort(404)
        admin = any(r.name == current_app.config["AUTH_ROLE_ADMIN"] for r in g.user.roles)
        if job.user_id != g.user.id and not admin:
            abort(404)  # someone else's import is not found, as a hidden record
        return job

    def _source(self, job: ImportJob) -> Source:
        return Source(engine.stored_file(job), job.file_format, job.encoding)

    # ------------------------------------------------------------------ pages

    @expose("/")
    @has_access
    def list(self):  # type: ignore[no-untyped-def]
        query = select(ImportJob).order_by(ImportJob.id.desc()).limit(50)
        admin = any(r.name == current_app.config["AUTH_ROLE_ADMIN"] for r in g.user.roles)
        if not admin:
            query = query.where(ImportJob.user_id == g.user.id)
        jobs = current_session().scalars(query).all()
        return self.render_template(
            "crm/imports/list.html", jobs=jobs, statuses=STATUSES, models=specs()
        )

    @expose("/new", methods=["GET", "POST"])
    @has_access
    def new(self):  # type: ignore[no-untyped-def]
        models = self._models()
        errors: dict[str, list[str]] = {}
        if request.method == "POST":
            model = request.form.get("model", "")
            upload = request.files.get("file")
            if model not in models:
                errors["model"] = [_("Choose what the rows are.")]
            if upload is None or not upload.filename:
                errors["file"] = [_("Choose a file.")]
            if not errors:
                assert upload is not None
                try:
                    job = self._create(model, upload)
                except (SourceError, FieldError) as exc:
                    errors = exc.messages if isinstance(exc, FieldError) else {"file": [str(exc)]}
                else:
                    return redirect(url_for("ImportView.mapping", job_id=job.id))
        return self.render_template(
            "crm/imports/new.html",
            models=models,
            errors=errors,
            chosen=request.form.get("model") or next(iter(models), ""),
            max_mb=MAX_UPLOAD // (1024 * 1024),
        )

    def _create(self, model: str, upload: Any) -> ImportJob:
        filename = upload.filename or "import.csv"
        fmt = file_format(filename)  # refuses other types before reading anything
        with tempfile.TemporaryDirectory() as folder:
            path = Path(folder) / f"upload.{fmt}"  # openpyxl goes by the extension
            upload.save(path)
            if path.stat().st_size > MAX_UPLOAD:
                raise FieldError(
                    {
                        "file": [
                            _(
                                "The file is larger than %(mb)s MB; import it with the crm "
                                "import command.",
                                mb=MAX_UPLOAD // (1024 * 1024),
                            )
                        ]
                    }
                )
            spec = specs()[model]
            key = spec.keys[0] if spec.keys else None
            source = Source(path, fmt)
            suggested = column_mapping.suggest(source.header, fields_of(spec))
            if key not in suggested.values():
                key = next((k for k in spec.keys if k in suggested.values()), None)
            return engine.create_job(
                path,
                model,
                g.user,
                filename=filename,
                mapping=suggested,
                key=key,
                mode="upsert" if key else "create",
                check_mapping=False,
            )

    @expose("/<int:job_id>/mapping", methods=["GET", "POST"])
    @has_access
    def mapping(self, job_id: int):  # type: ignore[no-untyped-def]
        job = self._job(job_id)
        if job.status not in ("new", "checked") and job.next_row > 2:
            flash(_("This import has started; its mapping cannot change."), "warning")
            return redirect(url_for("ImportView.show", job_id=job.id))
        fields = fields_of(specs()[job.model])
        source = self._source(job)
        errors: dict[str, list[str]] = {}
        chosen = {int(k): v for k, v in job.mapping.items()}
        key, mode = job.key_field, job.mode
        if request.method == "POST":
            chosen = {
                position: request.form[f"column_{position}"]
                for position in range(len(source.header))
                if request.form.get(f"column_{position}")
            }
            mode = request.form.get("mode", "upsert")
            key = request.form.get("key_field") or None
            try:
                engine.update_mapping(job, chosen, key, mode)
            except FieldError as exc:
                errors = exc.messages
            else:
                return redirect(url_for("ImportView.show", job_id=job.id))
        samples = [row.cells for _n, row in zip(range(SAMPLE_ROWS), source.rows(), strict=False)]
        return self.render_template(
            "crm/imports/mapping.html",
            job=job,
            header=source.header,
            samples=samples,
            fields=fields,
            chosen=chosen,
            key=key,
            mode=mode,
            modes=MODES,
            keys=[f for f in fields if f.key_ok],
            missing=column_mapping.missing_required(chosen, fields),
            errors=errors,
        )

    @expose("/<int:job_id>")
    @has_access
    def show(self, job_id: int):  # type: ignore[no-untyped-def]
        job = self._job(job_id)
        dry_run = job.status in ("checking", "checked")
        problems = (
            current_session()
            .scalars(
                select(ImportProblem)
                .where(ImportProblem.job_id == job.id, ImportProblem.dry_run.is_(dry_run))
                .order_by(ImportProblem.row_number, ImportProblem.id)
                .limit(PROBLEMS_SHOWN)
            )
            .all()
        )
        labels = {f.key: f.label for f in fields_of(specs()[job.model])}
        return self.render_template(
            "crm/imports/job.html",
            job=job,
            statuses=STATUSES,
            modes=MODES,
            problems=problems,
            dry_run=dry_run,
            progress=engine.progress_of(job),
            shown=PROBLEMS_SHOWN,
            labels=labels,
            mapping=sorted((int(p), k) for p, k in job.mapping.items()),
            header=self._source(job).header,
        )

    @expose("/<int:job_id>/progress")
    @has_access
    def progress(self, job_id: int):  # type: ignore[no-untyped-def]
        job = self._job(job_id)
        current_session().refresh(job)
        return jsonify(engine.progress_of(job))

    @expose("/<int:job_id>/check", methods=["POST"])
    @has_access
    def check(self, job_id: int):  # type: ignore[no-untyped-def]
        job = self._job(job_id)
        if job.status not in ("new", "checked", "failed") or job.next_row > 2:
            flash(_("This import has started; check the rows of a new one."), "warning")
        else:
            try:
                engine.claim_check(job.id)  # the page shows "checking" from the start
            except CrmError as exc:
                flash(str(exc), "warning")
            else:
                _run_in_background("check", job.id)
        return redirect(url_for("ImportView.show", job_id=job.id))

    @expose("/<int:job_id>/start", methods=["POST"])
    @has_access
    def start(self, job_id: int):  # type: ignore[no-untyped-def]
        job = self._job(job_id)
        if job.status in ("running", "checking", "queued", "done"):
            flash(_("This import is already under way or done."), "warning")
        else:
            engine.queue(job)
            _run_in_background("run", job.id)
        return redirect(url_for("ImportView.show", job_id=job.id))

    @expose("/<int:job_id>/report.csv")
    @has_access
    def report(self, job_id: int):  # type: ignore[no-untyped-def]
        job = self._job(job_id)
        dry_run = request.args.get("check") == "1"
        stem = Path(job.filename).stem
        suffix = _("Problems")
        name = f"{stem}-{suffix}.csv"
        response = Response(
            stream_with_context(error_report_csv(job, dry_run)), mimetype="text/csv"
        )
        from urllib.parse import quote

        response.headers["Content-Disposition"] = (
            f"attachment; filename=import-{job.id}-problems.csv; filename*=UTF-8''{quote(name)}"
        )
        return response
