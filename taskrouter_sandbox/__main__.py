"""`python -m taskrouter_sandbox`: the standalone server (taskrouter_sandbox/standalone.py)."""

import sys

from taskrouter_sandbox.standalone import main

if __name__ == "__main__":
    sys.exit(main())
