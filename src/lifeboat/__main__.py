"""``python -m lifeboat`` runs the command line."""

from lifeboat.app.cli.entry import main

main()
