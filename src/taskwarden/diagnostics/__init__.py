"""Diagnostics of a running node: hot threads."""
