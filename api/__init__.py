"""siammatch's outward face: the ``siammatch`` command line (and, later, the HTTP service)."""
