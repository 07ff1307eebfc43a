"""Importing CSV and XLSX files into any model that registers itself (``register_importers``).

:mod:`.source` reads files, :mod:`.targets` says what a model offers, :mod:`.mapping` suggests
which column fills which field, :mod:`.rows` checks rows, :mod:`.engine` runs jobs in batches
with a checkpoint, :mod:`.report` writes the error report.
"""
