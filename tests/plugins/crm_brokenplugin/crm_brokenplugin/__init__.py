"""A plugin that cannot be imported: the app must start without it and show why."""

raise RuntimeError("crm_brokenplugin is broken on purpose")
