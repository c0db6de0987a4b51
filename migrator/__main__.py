"""`python -m migrator`: the same CLI as the `milvus-migrate` script."""

import sys

from migrator.cli import main

if __name__ == "__main__":  # a child process the tool spawns imports this module too (rocksmq/reader.py)
    sys.exit(main())
