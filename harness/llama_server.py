"""`python -m harness.llama_server build`: kept as a short alias of harness/servers/llama_server.py, the
command the docs and users' notes have always given."""

from __future__ import annotations

import sys

from .servers.llama_server import main

if __name__ == "__main__":
    sys.exit(main())
