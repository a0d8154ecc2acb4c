"""The volume environment (torch and NeMo on the network volume): the command line and import name.

    python bootstrap.py            build the environment now (a one-off pod), then fetch the model
    python bootstrap.py --check    print a JSON status; exit 0 when ready
    python bootstrap.py --force    build and publish a fresh environment
    python bootstrap.py --gc       remove leftovers of dead builds

The work lives in `utils/volume/`, one module per step; this file keeps the name that operators and
the image know. Stdlib only: it runs before the environment exists.
"""

import sys

from utils.logs import configure_logging
from utils.volume import *
from utils.volume import main

if __name__ == "__main__":
    configure_logging()
    sys.exit(main())
