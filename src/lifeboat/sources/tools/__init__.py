"""Typed wrappers around external programs; the only place that starts processes."""
