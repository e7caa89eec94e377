"""``python -m taskwarden`` is the ``taskwarden`` command."""

from taskwarden.cli.main import main

main()
