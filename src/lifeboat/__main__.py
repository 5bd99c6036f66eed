"""``python -m lifeboat`` runs the command line."""

from lifeboat.app.cli.main import main

main()
