"""The siammatch exception hierarchy.

Every error a user can cause (a bad image, a bad box, a wrong checkpoint, an unknown
component name, a bad recipe value) is one of these classes, so the library, the command
line and the HTTP service can each turn it into the right kind of message: a typed
exception, a one-line error with exit code 2, or a 4xx JSON body. They subclass
``ValueError`` where the cause is a bad value passed in.
"""

from __future__ import annotations


class SiammatchError(Exception):
    """Base class of every error raised on purpose by siammatch.

    Attributes:
        code: short machine-readable identifier, used as the HTTP error code.
    """

    code = "siammatch_error"


class InvalidImageError(SiammatchError, ValueError):
    """An image could not be read, decoded or interpreted (corrupt, empty, wrong type)."""

    code = "invalid_image"


class ImageTooLargeError(InvalidImageError):
    """An image has more pixels, or a longer side, than the configured limit
    (decompression-bomb and memory guard)."""

    code = "image_too_large"


class ImageTooThinError(InvalidImageError):
    """An image's longer side is more times its shorter side than the configured aspect
    ratio allows (a 5000x1 strip: nothing to match, and a scene's pyramid grows with it)."""

    code = "image_too_thin"


class InvalidBoxError(SiammatchError, ValueError):
    """A box is malformed, degenerate (zero or negative area) or outside its image."""

    code = "invalid_box"


class CheckpointError(SiammatchError, ValueError):
    """A weights file is unreadable, unsafe, truncated or does not fit the model."""

    code = "invalid_checkpoint"


class UnknownComponentError(SiammatchError, KeyError):
    """A name (recipe, backbone, head, tracker ...) is not registered.

    The message lists the valid names.
    """

    code = "unknown_component"

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0]) if self.args else ""


class ConfigError(SiammatchError, ValueError):
    """A recipe or override has an unknown key or a value of the wrong type."""

    code = "invalid_config"


class CatalogError(SiammatchError):
    """A catalog operation failed (unknown id, duplicate id, corrupt store)."""

    code = "catalog_error"


class InvalidArgumentError(SiammatchError, ValueError):
    """A request parameter is out of its valid range (threshold, counts, sizes)."""

    code = "invalid_argument"


class ProductNotFoundError(CatalogError, KeyError):
    """A product id is not in the catalog."""

    code = "product_not_found"

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0]) if self.args else ""


class DuplicateProductError(CatalogError):
    """A product id is already in the catalog."""

    code = "duplicate_product"


class NoTrackingModeError(InvalidArgumentError):
    """A matcher without a tracking mode (the detector) was asked for a tracker."""

    code = "no_tracking_mode"


class DatasetLayoutError(SiammatchError, ValueError):
    """A tracking benchmark's folder does not hold its layout: a file is missing, unreadable
    or malformed (the message names the file)."""

    code = "invalid_dataset"


class TrackingResultsError(SiammatchError, ValueError):
    """Tracker result files are missing or malformed (the message names the file)."""

    code = "invalid_results"
