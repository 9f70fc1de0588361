"""``python -m hotpath``: the same as the ``hotpath`` command."""

from hotpath import require_supported_python

require_supported_python()

from hotpath_cli.main import main  # noqa: E402

main()
