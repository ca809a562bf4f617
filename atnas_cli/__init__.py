"""The ``atnas`` command line: local algorithm runs, the service, and a client of the service."""
