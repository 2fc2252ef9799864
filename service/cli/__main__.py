"""``python -m service.cli`` is ``tunewatch``."""

from service.cli import main

main()
