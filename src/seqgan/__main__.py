"""`python -m seqgan ...` is the `seqgan` command."""

import sys

from seqgan.cli.main import main

sys.exit(main())
