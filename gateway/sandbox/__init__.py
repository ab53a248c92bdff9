"""A complete local federation on loopback, for integrators, tests and the demo."""
