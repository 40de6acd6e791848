"""``python -m mss`` is the ``mss`` command."""

from mss.cli import main

main()
