"""``python -m usermessages`` runs the command line."""

from usermessages.cli.main import main

main()
