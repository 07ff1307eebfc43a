"""Automation rules: when something happens to a record (an event, a field change, a date
coming up, a schedule) and its conditions hold, take actions, after commit and logged."""
