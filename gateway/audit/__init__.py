"""The node's tamper-evident audit log (DESIGN §6)."""
