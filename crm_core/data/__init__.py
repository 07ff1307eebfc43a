"""Data tools: import and export, duplicates and merge, data quality, backup and restore."""
