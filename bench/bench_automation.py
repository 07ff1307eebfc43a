"""Automation rules on the event stream: what 50 active rules cost each event, beside the bare
outbox dispatch of the same events in the same run.

    .venv/bin/python bench/bench_automation.py --url sqlite:////tmp/bench_automation.db
    .venv/bin/python bench/bench_automation.py \\
        --url postgresql+psycopg2://postgres@127.0.0.1:5432/crm_bench_automation

The database is made afresh and given ``--events`` customers (default 10,000), 10 % of them in
上海 with industry 制造业, each with its ``customer.created`` event in the outbox. The same events
are then dispatched three times (``crm_core.events.dispatch.dispatch_pending``, deliveries reset
in between):

- ``bare``: no rules: the outbox dispatch with every core handler, the floor;
- ``50 rules, none acts``: 50 active rules that every event reaches (40 on ``customer.created``
  with a condition that does not hold, 5 with two conditions of which the second fails, 5
  watching a field the events leave empty): the cost of matching and evaluating;
- ``50 rules, one acts``: the same, one of them replaced by "上海 and 制造业 → tier A and a
  follow-up task in 2 days", which acts on 10 % of the events (a run: two writes, their audit
  entries and events, the run log, in one transaction).

Printed: events per second, the overhead per event beside ``bare``, and rule evaluations per
second (events × rules over the extra time).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table
from sqlalchemy import delete, func, insert, select, update

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_import import fresh_database  # noqa: E402
from generate import make_app  # noqa: E402

console = Console()
RULES = 50


def setup(app: Any, events: int) -> None:
    from crm_core.cli.db import upgrade_all
    from crm_core.customers.models import Customer
    from crm_core.db import session, utcnow
    from crm_core.events.models import OutboxEvent

    with app.app_context():
        upgrade_all()
        s = session()
        now = utcnow()
        rows = [
            {
                "code": f"A{n:08d}",
                "name": f"自动化客户{n}号有限公司",
                "kind": "company",
                "city": "上海" if n % 10 == 0 else "杭州",
                "industry": "制造业" if n % 10 == 0 else "批发零售",
                "active": True,
                "version": 1,
                "created_at": now,
                "updated_at": now,
            }
            for n in range(events)
        ]
        for start in range(0, events, 1000):
            s.execute(insert(Customer.__table__), rows[start : start + 1000])
        ids = s.scalars(select(Customer.id).order_by(Customer.id)).all()
        s.execute(
            insert(OutboxEvent.__table__),
            [{"type": "customer.created", "payload": {"id": i}, "occurred_at": now} for i in ids],
        )
        s.commit()


def rules(app: Any, acting: bool) -> None:
    from crm_core.db import session
    from crm_core.workflow.automation import definitions
    from crm_core.workflow.automation.models import AutomationRule, AutomationRun

    with app.app_context():
        s = session()
        s.execute(delete(AutomationRun))
        for rule in s.scalars(select(AutomationRule)):
            s.delete(rule)
        s.flush()
        specs: list[dict[str, Any]] = []
        for i in range(40):
            specs.append({"trigger": "event", "conditions": [f"city eq 城市{i}"]})
        for i in range(5):
            specs.append(
                {"trigger": "event", "conditions": ["kind eq company", f"name eq 无此名{i}"]}
            )
        for _ in range(5):
            specs.append({"trigger": "field_change", "field": "website", "conditions": []})
        if acting:
            specs[0] = {
                "trigger": "event",
                "conditions": ["city eq 上海", "industry eq 制造业"],
                "actions": [
                    {"type": "set_field", "params": {"field": "tier", "value": "A"}},
                    {"type": "create_task", "params": {"subject": "首次跟进", "due_days": "2"}},
                ],
            }
        for n, spec in enumerate(specs):
            data = definitions.normalised(
                {
                    "label_zh": f"规则{n}",
                    "model": "Customer",
                    "event_type": "customer.created",
                    "actions": [{"type": "notify", "params": {"title": "x"}}],
                    **spec,
                }
            )
            problems = definitions.problems(data)
            assert not problems, problems
            definitions.save(s, AutomationRule(name=f"bench_{n}"), data, "bench")
        s.commit()


def reset(app: Any) -> None:
    from crm_core.db import session
    from crm_core.events.models import EventDelivery, OutboxEvent

    with app.app_context():
        s = session()
        s.execute(delete(EventDelivery))
        s.execute(
            update(OutboxEvent)
            .where(OutboxEvent.type == "customer.created")
            .values(dispatched_at=None)
        )
        s.commit()


def dispatch(app: Any) -> float:
    from crm_core.events.dispatch import dispatch_pending

    with app.app_context():
        started = time.perf_counter()
        while dispatch_pending(limit=1000):
            pass
        return time.perf_counter() - started


def outcome(app: Any) -> tuple[int, int]:
    from crm_core.activities.models import Activity
    from crm_core.db import session
    from crm_core.workflow.automation.models import AutomationRun

    with app.app_context():
        s = session()
        runs = s.scalar(
            select(func.count()).select_from(AutomationRun).where(AutomationRun.status == "done")
        )
        tasks = s.scalar(select(func.count()).select_from(Activity))
        s.rollback()
        return int(runs or 0), int(tasks or 0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--url", required=True)
    parser.add_argument("--events", type=int, default=10_000)
    args = parser.parse_args()

    url = fresh_database(args.url)
    app = make_app(url)
    setup(app, args.events)
    console.print(f"{args.events:,} customer.created events, {RULES} rules; {url}")

    timings: dict[str, float] = {}
    timings["bare"] = dispatch(app)
    reset(app)
    rules(app, acting=False)
    timings["50 rules, none acts"] = dispatch(app)
    idle_runs = outcome(app)
    reset(app)
    rules(app, acting=True)
    timings["50 rules, one acts"] = dispatch(app)
    runs, tasks = outcome(app)

    table = Table(
        "dispatch", "seconds", "events/s", "× bare", "overhead ms/event", "rule evaluations/s"
    )
    bare = timings["bare"]
    for name, seconds in timings.items():
        extra = seconds - bare
        evaluations = "" if name == "bare" or extra <= 0 else f"{args.events * RULES / extra:,.0f}"
        table.add_row(
            name,
            f"{seconds:.2f}",
            f"{args.events / seconds:,.0f}",
            f"{seconds / bare:.2f}",
            "" if name == "bare" else f"{extra * 1000 / args.events:.3f}",
            evaluations,
        )
    console.print(table)
    expected = args.events // 10
    ok = idle_runs == (0, 0) and runs == expected and tasks == expected
    console.print(
        f"runs: none-acting {idle_runs[0]}, acting {runs} (expected {expected}); tasks {tasks}: "
        + ("outcome as expected" if ok else "[red]UNEXPECTED OUTCOME[/red]")
    )
    if not ok:
        sys.exit(1)


if __name__ == "__main__":
    main()
