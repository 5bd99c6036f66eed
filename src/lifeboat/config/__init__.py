"""Typed configuration: the YAML file naming repositories, sources and retention,
validated up front with errors that name the offending key."""
