"""Support figures from the event log, pure: tickets and their typed events in,
figures out. ``facts`` reads one ticket's log, ``compute`` folds tickets into
periods and groups, ``render`` shapes the result for JSON, CSV and text.
docs/reports.md defines every figure."""
