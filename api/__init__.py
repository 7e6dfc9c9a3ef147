"""siammatch's outward face: the ``siammatch`` command line (:mod:`api.cli`) and the HTTP
service (:func:`api.app.create_app`, run under gunicorn by ``siammatch serve``)."""
