"""`python -m migrator`: the same CLI as the `milvus-migrate` script."""

import sys

from migrator.cli import main

sys.exit(main())
