"""The service's blueprints, one per resource.

``match`` (``POST /v1/match``), ``catalog`` (``/v1/catalog``), ``search``
(``POST /v1/search``), ``health`` (``/healthz``, ``/readyz``), ``metrics`` (``/metrics``),
``openapi`` (``/openapi.json``) and ``web`` (the page at ``/`` and its static files).
"""
