"""Real Docker test bed for kohakuriver.docker: the command line (the package beside this file does the work).

One Host engine, runner engines (Debian 12 Docker 20.10 and Debian 13 Docker 26) each in its
own network namespace, a local registry holding base images built here, and an sshd on loopback.
Standard library only: it runs before any virtualenv exists.

    python3 tests/testbed/testbed.py up [--runners N] [--fresh] | down | status | env
"""

import os
import sys

if __name__ == "__main__":
    # Run as a script, this folder is sys.path[0]; its parent makes it the package `testbed`.
    sys.path[0] = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    from testbed.cli import main  # pylint: disable=import-self

    sys.exit(main())
