"""A site-local hooks file whose event handler always fails, for the isolation tests.

Copied into a ``CRM_HOOKS_DIR`` by the tests; it needs no packaging and no manifest, so it is
named ``hooks_flaky`` and enabled as soon as it is there.
"""

import crm_core


@crm_core.hookimpl
def on_event(event: crm_core.Event) -> None:
    raise RuntimeError(f"flaky handler fails on {event.type} on purpose")
