"""Training data for every matcher family.

Pair sources (COCO-format detection/segmentation sets, video sets in GOT-10k / LaSOT /
ImageNet-VID layout) and the built-in synthetic e-commerce generator
(:mod:`trainers.data.synth`), which writes a COCO-format dataset of procedurally made
products, their catalog photos and cluttered scenes with boxes and visible masks.
"""
