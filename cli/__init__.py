"""hotpath's command line; installed as the ``hotpath_cli`` package."""
