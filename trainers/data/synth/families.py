"""Sampling product designs: categories, palettes, brands, and lookalike families.

Products come in **families**: a base design and 1-3 lookalikes that keep the shape,
layout and colours and change only what real product lines change: the flavour or size
text, the flavour (accent) colour, a logo detail or a badge. Lookalikes are the hard
distractors of one-shot matching. Every family is drawn from its own
``numpy.random.SeedSequence(seed, spawn_key=(FAMILY_KEY, family index))``, so a catalog
is the same whoever builds it and in whatever order.
"""

from __future__ import annotations

import colorsys
import dataclasses
from dataclasses import dataclass

import numpy as np

from trainers.data.synth.designs import (
    BADGES,
    HERSHEY_FONTS,
    LOGO_KINDS,
    MAX_SIDE,
    PATTERNS,
    RGB,
    TTF_FONTS,
    Artwork,
    Logo,
    ProductSpec,
    TextStyle,
    hsv,
)

FAMILY_KEY = 0
FOREIGN_KEY = 2


@dataclass(frozen=True)
class Category:
    """A product category: which packagings and texts are plausible for it."""

    shapes: tuple[str, ...]
    lines: tuple[str, ...]
    flavours: tuple[str, ...]
    sizes: tuple[str, ...]
    illustrations: tuple[str, ...]


CATEGORIES: dict[str, Category] = {
    "snacks": Category(
        ("pouch", "box"),
        ("Crunch", "Crisps", "Bites", "Puffs", "Crackers"),
        ("Original", "Sea Salt", "Paprika", "Cheese", "Sour Cream", "BBQ", "Chili Lime"),
        ("150 g", "200 g", "250 g", "300 g"),
        ("fruit", "swoosh", "none"),
    ),
    "cereal": Category(
        ("box",),
        ("Flakes", "Hoops", "Muesli", "Granola", "Pillows"),
        ("Honey", "Chocolate", "Strawberry", "Oat", "Multigrain", "Cinnamon", "Nut"),
        ("375 g", "500 g", "750 g"),
        ("fruit", "photo:coffee", "swoosh"),
    ),
    "drinks": Category(
        ("bottle", "can"),
        ("Cola", "Soda", "Juice", "Iced Tea", "Water", "Energy"),
        ("Lemon", "Orange", "Zero", "Classic", "Mango", "Cherry", "Peach", "Lime"),
        ("330 ml", "500 ml", "1 L", "1.5 L"),
        ("fruit", "swoosh", "none"),
    ),
    "dairy": Category(
        ("jar", "bottle", "box"),
        ("Yogurt", "Milk", "Cream", "Kefir"),
        ("Natural", "Vanilla", "Berry", "Light", "Greek", "Peach", "Coconut"),
        ("250 g", "500 g", "1 L"),
        ("fruit", "swoosh"),
    ),
    "care": Category(
        ("tube", "bottle"),
        ("Shampoo", "Toothpaste", "Lotion", "Shower Gel", "Conditioner"),
        ("Mint", "Fresh", "Sensitive", "Whitening", "Aloe", "Repair", "Volume"),
        ("75 ml", "100 ml", "250 ml", "400 ml"),
        ("swoosh", "none", "photo:immunohistochemistry"),
    ),
    "coffee": Category(
        ("pouch", "jar", "can"),
        ("Coffee", "Espresso", "Roast", "Crema"),
        ("Dark", "Medium", "Decaf", "Intenso", "Mild", "Gold", "Arabica"),
        ("250 g", "500 g", "1 kg"),
        ("photo:coffee", "swoosh"),
    ),
    "pets": Category(
        ("can", "pouch", "box"),
        ("Cat Food", "Dog Food", "Treats", "Kibble"),
        ("Chicken", "Salmon", "Beef", "Tuna", "Turkey", "Lamb"),
        ("85 g", "400 g", "1 kg", "2 kg"),
        ("photo:chelsea", "photo:cat"),
    ),
    "sauces": Category(
        ("bottle", "jar"),
        ("Ketchup", "Mustard", "Pesto", "Salsa", "Mayo"),
        ("Classic", "Hot", "Mild", "Organic", "Garlic", "Smoky"),
        ("250 ml", "400 g", "500 ml"),
        ("fruit", "swoosh", "none"),
    ),
}

_SYLLABLES = (
    "ka",
    "lo",
    "mi",
    "ra",
    "ven",
    "to",
    "zu",
    "bel",
    "cor",
    "dax",
    "fi",
    "gra",
    "hal",
    "jo",
    "lux",
    "mar",
    "nor",
    "pi",
    "qui",
    "sol",
    "tri",
    "ul",
    "vo",
    "wex",
    "yo",
    "zen",
    "bri",
    "fen",
    "tas",
    "ori",
    "ne",
    "sa",
    "pol",
    "kri",
    "mon",
    "vi",
)
_ASPECT = {  # width / height of the whole design
    "box": (0.55, 1.25),
    "bottle": (0.30, 0.42),
    "can": (0.52, 0.64),
    "jar": (0.72, 0.95),
    "pouch": (0.66, 0.84),
    "tube": (0.26, 0.34),
}
_SHELF_HEIGHT = {  # height on a shelf relative to the tallest products
    "box": (0.72, 1.0),
    "bottle": (0.9, 1.0),
    "can": (0.5, 0.62),
    "jar": (0.45, 0.6),
    "pouch": (0.62, 0.82),
    "tube": (0.55, 0.7),
}


def family_sizes(num_products: int, *, seed: int) -> list[int]:
    """Split ``num_products`` into families of 2-4 members (base design + 1-3 lookalikes).

    Args:
        num_products: total number of catalog products, ``>= 1``.
        seed: dataset seed.

    Returns:
        Family sizes summing to ``num_products``; only ``num_products == 1`` yields a
        family of one.
    """
    rng = np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(FAMILY_KEY,)))
    sizes: list[int] = []
    left = num_products
    while left > 0:
        size = int(rng.integers(2, 5))
        if left - size == 1:  # never leave a family of one behind
            size = size + 1 if size < 4 else size - 1
        size = min(size, left)
        sizes.append(size)
        left -= size
    return sizes


def design_catalog(num_products: int, *, seed: int) -> list[ProductSpec]:
    """The catalog: ``num_products`` specs with ids ``1..num_products``, family by family."""
    specs: list[ProductSpec] = []
    next_id = 1
    for family_id, size in enumerate(family_sizes(num_products, seed=seed), start=1):
        ids = list(range(next_id, next_id + size))
        rng = np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(FAMILY_KEY, family_id)))
        specs.extend(design_family(rng, family_id=family_id, product_ids=ids))
        next_id += size
    return specs


def design_foreign(count: int, *, seed: int) -> list[ProductSpec]:
    """``count`` non-catalog products (ids ``-1..-count``): shelf neighbours, never labelled."""
    specs = []
    for index in range(1, count + 1):
        rng = np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(FOREIGN_KEY, index)))
        specs.extend(design_family(rng, family_id=-index, product_ids=[-index]))
    return specs


def design_family(
    rng: np.random.Generator, *, family_id: int, product_ids: list[int]
) -> list[ProductSpec]:
    """A base design and ``len(product_ids) - 1`` lookalikes of it.

    Args:
        rng: the family's generator (consumed).
        family_id: id written to every member.
        product_ids: ids of the members; the first is the base design.

    Returns:
        One spec per id, in order, each listing the others as lookalikes.
    """
    category_name = str(rng.choice(list(CATEGORIES)))
    category = CATEGORIES[category_name]
    shape = str(rng.choice(category.shapes))
    brand = _brand_name(rng)
    line = str(rng.choice(category.lines))
    flavours = [str(f) for f in rng.permutation(category.flavours)]
    sizes = [str(s) for s in rng.permutation(category.sizes)]
    base = _base_spec(rng, shape=shape, category=category, brand=brand, line=line)
    base_art = dataclasses.replace(base.artwork, flavour=flavours[0], size_text=sizes[0])
    members: list[ProductSpec] = []
    for index, product_id in enumerate(product_ids):
        art = base_art
        if index > 0 and rng.random() < 0.15:  # same flavour, another pack size
            art = dataclasses.replace(art, size_text=sizes[index % len(sizes)])
        elif index > 0:
            art = _lookalike_artwork(rng, art, flavour=flavours[index])
        members.append(
            dataclasses.replace(
                base,
                product_id=product_id,
                family_id=family_id,
                family_name=f"{brand} {line}",
                name=f"{brand} {line} {art.flavour} {art.size_text}",
                category=category_name,
                artwork=art,
                lookalikes=tuple(i for i in product_ids if i != product_id),
            )
        )
    return members


# -- sampling helpers -----------------------------------------------------------------


def _brand_name(rng: np.random.Generator) -> str:
    parts = rng.choice(_SYLLABLES, size=int(rng.integers(2, 4)))
    return "".join(str(p) for p in parts).capitalize()


def _palette(rng: np.random.Generator) -> dict[str, RGB]:
    hue = float(rng.uniform(0, 360))
    scheme = rng.choice(["complementary", "analogous", "mono", "triad", "dark", "light"])
    offset = {"complementary": 180, "analogous": 35, "mono": 0, "triad": 120}.get(str(scheme), 180)
    sat = float(rng.uniform(0.55, 0.95))
    if scheme == "dark":
        base, base2 = hsv(hue, sat, rng.uniform(0.12, 0.3)), hsv(hue + 20, sat, 0.35)
    elif scheme == "light":
        base, base2 = hsv(hue, rng.uniform(0.05, 0.25), 0.97), hsv(hue, 0.3, 0.88)
    else:
        base = hsv(hue, sat, rng.uniform(0.6, 0.95))
        base2 = hsv(hue + rng.uniform(-20, 20), sat * 0.8, rng.uniform(0.4, 0.8))
    band = hsv(hue + offset, rng.uniform(0.5, 1.0), rng.uniform(0.55, 1.0))
    if rng.random() < 0.3:
        band = (250, 250, 245) if rng.random() < 0.6 else (25, 25, 30)
    dark_base = 0.299 * base[0] + 0.587 * base[1] + 0.114 * base[2] < 115  # luma
    ink = (250, 250, 250) if dark_base else hsv(hue + offset, 0.9, 0.25)
    return {
        "base": base,
        "base2": base2,
        "band": band,
        "accent": hsv(rng.uniform(0, 360), rng.uniform(0.6, 1.0), rng.uniform(0.6, 1.0)),
        "ink": ink,
        "pattern": hsv(hue + offset * 0.5, sat, 0.95 if dark_base else 0.3),
    }


def _text_style(rng: np.random.Generator, colour: RGB, *, heavy: bool) -> TextStyle:
    font = str(rng.choice(TTF_FONTS if rng.random() < 0.75 else HERSHEY_FONTS))
    weight = int(rng.integers(600, 901)) if heavy else int(rng.integers(350, 701))
    outline = None
    if heavy and rng.random() < 0.45:
        outline = (255, 255, 255) if sum(colour) < 380 else (20, 20, 20)
    return TextStyle(font, weight, colour, outline, bool(rng.random() < 0.45))


def _base_spec(
    rng: np.random.Generator, *, shape: str, category: Category, brand: str, line: str
) -> ProductSpec:
    pal = _palette(rng)
    aspect = float(rng.uniform(*_ASPECT[shape]))
    height, width = (
        (MAX_SIDE, round(MAX_SIDE * aspect))
        if aspect <= 1
        else (round(MAX_SIDE / aspect), MAX_SIDE)
    )
    depth = round(width * rng.uniform(0.1, 0.2)) if shape == "box" and rng.random() < 0.6 else 0
    if depth:
        height, width = height - depth, width - depth
    art = Artwork(
        base=pal["base"],
        base2=pal["base2"],
        gradient=str(rng.choice(["none", "vertical", "horizontal", "radial", "diagonal"])),
        pattern=str(rng.choice(PATTERNS)),
        pattern_colour=pal["pattern"],
        pattern_strength=float(rng.uniform(0.15, 0.45)),
        pattern_scale=float(rng.uniform(6, 22)),
        pattern_angle=float(rng.uniform(0, 180)),
        band_colour=pal["band"],
        band_y=float(rng.uniform(0.42, 0.62)),
        band_height=float(rng.uniform(0.1, 0.17)),
        band_style=str(rng.choice(["rect", "wave", "slant"])),
        accent=pal["accent"],
        illustration=str(rng.choice(category.illustrations)),
        brand=brand.upper() if rng.random() < 0.35 else brand,
        line=line,
        flavour="",
        size_text="",
        brand_y=float(rng.uniform(0.13, 0.26)),
        brand_style=_text_style(rng, pal["ink"], heavy=True),
        line_style=_text_style(rng, pal["ink"], heavy=False),
        flavour_style=_text_style(
            rng, (255, 255, 255) if rng.random() < 0.6 else (20, 20, 25), heavy=True
        ),
        logo=Logo(
            kind=str(rng.choice(LOGO_KINDS)),
            colour=pal["band"] if rng.random() < 0.5 else pal["accent"],
            ink=(255, 255, 255) if rng.random() < 0.7 else (20, 20, 20),
            letter=brand[0].upper(),
            detail=int(rng.integers(0, 4)),
            position=int(rng.integers(0, 3)),
        ),
        badge=str(rng.choice(BADGES)) if rng.random() < 0.35 else None,
        badge_colour=hsv(rng.uniform(0, 60), 0.9, 0.95),
        barcode=bool(rng.random() < 0.6),
        texture_seed=int(rng.integers(0, 2**31 - 1)),
    )
    cap = hsv(rng.uniform(0, 360), rng.uniform(0, 0.8), rng.uniform(0.15, 0.95))
    body = hsv(rng.uniform(0, 360), rng.uniform(0.0, 0.6), rng.uniform(0.3, 0.95))
    return ProductSpec(
        product_id=0,
        family_id=0,
        family_name="",
        name="",
        category="",
        shape=shape,
        height=height,
        width=width,
        depth=depth,
        body_colour=body,
        cap_colour=cap,
        shelf_height=float(rng.uniform(*_SHELF_HEIGHT[shape])),
        artwork=art,
        lookalikes=(),
    )


def _lookalike_artwork(rng: np.random.Generator, art: Artwork, *, flavour: str) -> Artwork:
    """Same layout and colours; new flavour text plus one or two small differences."""
    h, s, v = colorsys.rgb_to_hsv(*(c / 255 for c in art.accent))
    shift = float(rng.uniform(25, 90)) * (1 if rng.random() < 0.5 else -1)
    changes: dict = {"flavour": flavour, "accent": hsv(h * 360 + shift, s, v)}
    extra = rng.choice(["none", "logo", "badge", "band"], p=[0.3, 0.3, 0.2, 0.2])
    if extra == "logo":
        changes["logo"] = dataclasses.replace(art.logo, detail=(art.logo.detail + 1) % 4)
    elif extra == "badge":
        choices = [b for b in BADGES if b != art.badge]
        changes["badge"] = None if art.badge and rng.random() < 0.5 else str(rng.choice(choices))
    elif extra == "band":
        bh, bs, bv = colorsys.rgb_to_hsv(*(c / 255 for c in art.band_colour))
        changes["band_colour"] = hsv(bh * 360 + rng.uniform(-25, 25), bs, bv)
    return dataclasses.replace(art, **changes)
