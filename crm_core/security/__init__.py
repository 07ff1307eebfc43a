"""Security: the security manager and, later, record rules, masking and audit."""
