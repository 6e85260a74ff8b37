"""``python -m inboxd`` is the ``inboxd`` command."""

from inboxd.cli import main

main()
