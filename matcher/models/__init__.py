"""Network definitions: backbones, necks, heads and their compositions."""

from matcher.models.builders import build_siamese_net
from matcher.models.siamese import SiameseNet

__all__ = ["SiameseNet", "build_siamese_net"]
