"""What the command line and the service use when nothing is configured.

A module of plain constants, importing nothing: the command line reads it before it knows
which command runs (and so before torch is imported), the service's settings read it too.
"""

#: The recipe of ``siammatch match``/``serve``/``calibrate`` and of the service when none
#: is named and no weights file names one.
DEFAULT_RECIPE = "siammask_small"

#: The embedded catalog's folder of ``siammatch serve`` and ``siammatch catalog``.
DEFAULT_CATALOG = "var/catalog"
