"""Approval processes (审批流): versioned definitions, instances on records, approver tasks and
their history; the public API is :mod:`crm_core.workflow.approvals.engine`."""
