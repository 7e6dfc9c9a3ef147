"""Product designs as data: the packaging spec of a product and its printed artwork.

A :class:`ProductSpec` describes one product's packaging completely (shape class, size,
colours, pattern, printed texts, logo, badge, barcode), so rendering it
(:func:`trainers.data.synth.packaging.render_product`) is a pure function of the spec.
The specs are sampled, family by family, in :mod:`trainers.data.synth.families`.

Catalog products have ids ``1..N`` (the COCO category ids). "Foreign" products (other
brands that share the shelves but are not in the catalog) have negative ids and are
never annotated.
"""

from __future__ import annotations

import colorsys
from dataclasses import dataclass

RGB = tuple[int, int, int]

SHAPES = ("box", "bottle", "can", "jar", "pouch", "tube")
TTF_FONTS = ("sans", "italic", "uni")  # OpenCV's built-in TrueType faces (cv2.FontFace)
HERSHEY_FONTS = ("hershey_triplex", "hershey_complex", "hershey_duplex", "hershey_script")
PATTERNS = ("none", "stripes", "dots", "waves", "checks", "noise", "confetti")
LOGO_KINDS = ("circle", "ring", "shield", "star", "diamond", "leaf")
BADGES = ("NEW", "-20%", "BIO", "XL", "2+1", "VEGAN", "ZERO", "+25%", "ECO")
MAX_SIDE = 300  # longest side of a rendered design, pixels


@dataclass(frozen=True)
class TextStyle:
    """How a text line is printed.

    Attributes:
        font: one of :data:`TTF_FONTS` (anti-aliased TrueType) or :data:`HERSHEY_FONTS`.
        weight: 100-900; TrueType weight, or stroke thickness for Hershey fonts.
        colour: ink colour, RGB.
        outline: outline colour, or ``None`` for none.
        upper: print in capitals.
    """

    font: str
    weight: int
    colour: RGB
    outline: RGB | None
    upper: bool


@dataclass(frozen=True)
class Logo:
    """A brand mark: a shape with the brand's initial and an optional small detail.

    Attributes:
        kind: one of :data:`LOGO_KINDS`.
        colour: fill colour.
        ink: letter colour.
        letter: the initial printed inside.
        detail: 0-3, a small mark (none, dot, bar, three dots); lookalikes may change it.
        position: 0 top left, 1 top centre, 2 top right.
    """

    kind: str
    colour: RGB
    ink: RGB
    letter: str
    detail: int
    position: int


@dataclass(frozen=True)
class Artwork:
    """The printed face of a package (what is drawn before the shape is applied)."""

    base: RGB
    base2: RGB
    gradient: str  # "none", "vertical", "horizontal", "radial", "diagonal"
    pattern: str  # one of PATTERNS
    pattern_colour: RGB
    pattern_strength: float
    pattern_scale: float
    pattern_angle: float
    band_colour: RGB
    band_y: float  # band centre, fraction of the face height
    band_height: float
    band_style: str  # "rect", "wave", "slant"
    accent: RGB  # flavour colour: flavour panel, illustration; differs between lookalikes
    illustration: str  # "none", "fruit", "swoosh", or "photo:<scikit-image sample>"
    brand: str
    line: str
    flavour: str
    size_text: str
    brand_y: float  # brand text centre, fraction of the face height
    brand_style: TextStyle
    line_style: TextStyle
    flavour_style: TextStyle
    logo: Logo
    badge: str | None
    badge_colour: RGB
    barcode: bool
    texture_seed: int


@dataclass(frozen=True)
class ProductSpec:
    """One product: packaging shape, size and artwork, plus catalog metadata.

    Attributes:
        product_id: COCO category id (``>= 1``), or a negative id for a foreign product.
        family_id: id shared by a base design and its lookalikes.
        family_name: brand and product line, e.g. ``"Zentora Crunch"``.
        name: unique product name, e.g. ``"Zentora Crunch Paprika 200 g"``.
        category: key of :data:`CATEGORIES`.
        shape: one of :data:`SHAPES`.
        height: design height in pixels (box: front face only).
        width: design width in pixels (box: front face only).
        depth: visible side/top depth of a box in pixels (0 for a flat front view).
        body_colour: colour of the package outside the printed label (glass, plastic).
        cap_colour: colour of caps and lids.
        shelf_height: height on a shelf relative to the tallest products, in (0, 1].
        artwork: the printed face.
        lookalikes: ids of the other members of the family.
    """

    product_id: int
    family_id: int
    family_name: str
    name: str
    category: str
    shape: str
    height: int
    width: int
    depth: int
    body_colour: RGB
    cap_colour: RGB
    shelf_height: float
    artwork: Artwork
    lookalikes: tuple[int, ...]


def hsv(h: float, s: float, v: float) -> RGB:
    """An RGB colour (0-255 ints) from hue in degrees and saturation/value in [0, 1]."""
    r, g, b = colorsys.hsv_to_rgb((h % 360.0) / 360.0, min(max(s, 0), 1), min(max(v, 0), 1))
    return (round(r * 255), round(g * 255), round(b * 255))
