"""Use cases that wire the repository to sources: backup, restore, browse, maintenance.

They return result objects and publish progress; they never print.
"""
