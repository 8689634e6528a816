"""``python -m bioloop.host.codec``: the codec's command line."""

from .cli import main

main()
