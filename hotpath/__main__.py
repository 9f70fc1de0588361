"""``python -m hotpath``: the same as the ``hotpath`` command."""

import sys

if sys.version_info < (3, 12):
    sys.stderr.write("hotpath: needs Python 3.12 or newer (sys.monitoring); this is %d.%d\n"
                     % sys.version_info[:2])
    sys.exit(2)

from hotpath_cli.main import main  # noqa: E402

main()
