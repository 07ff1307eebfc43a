"""Workflow: notifications, assignment rules, approvals and automation rules."""
