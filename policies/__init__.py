"""Access rights, service and purpose declarations, per-field consent and the JSON field filter."""
