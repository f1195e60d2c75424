"""The `pybroker` command line."""
