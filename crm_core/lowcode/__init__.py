"""The low-code engine: what admins change in the CRM without a programmer.

Custom fields (:mod:`.fields`): per model that opts in (``__crm_custom_fields__ = "custom"``,
the name of its JSON column), admins define fields with a kind, labels in Chinese and English,
help, required, default, bounds, pattern, choices, unique, sensitive and searchable flags
(Administration → Custom fields). Values live in the model's JSON column and are checked on
every write, wherever it comes from.
"""
