"""The marker plugins decorate their hook implementations with: ``@crm_core.hookimpl``."""

import pluggy

hookimpl = pluggy.HookimplMarker("crm")
