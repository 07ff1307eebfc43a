"""Notifications: the in-app inbox, e-mail and messaging-robot channels, per-user preferences.

Modules call :func:`crm_core.workflow.notifications.notify.notify`; channels come from the
``register_notification_channels`` hook.
"""
