"""Writes on the run-time side, one module per area."""
