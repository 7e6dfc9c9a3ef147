"""Guessing which published model a state dict comes from, by its key names.

Used in the messages of a refused checkpoint (:func:`matcher.checkpoints.io.fit_state_dict`),
so that a user who passes, say, DaSiamRPN weights to a PySOT recipe is told what the file
looks like rather than only which keys are missing.
"""

from __future__ import annotations


def guess_origin(keys: list[str]) -> str:
    """A human guess of which published model a set of state-dict keys belongs to."""
    keyset = set(keys)

    def has(prefix: str) -> bool:
        return any(k.startswith(prefix) for k in keyset)

    if has("featureExtract."):
        return "a DaSiamRPN model (SiamRPN up-channel, featureExtract/conv_r1 names)"
    if has("basemodel."):
        if has("basemodel.Mixed_6e."):
            return "a SiamFC++ GoogLeNet model (video_analyst basemodel/head names)"
        if has("basemodel.conv5."):
            return "a SiamFC++ AlexNet model (video_analyst basemodel/head names)"
        return "a SiamFC++ model (video_analyst basemodel/head names)"
    if has("feature.") and not has("backbone."):
        return "a pre-2019 siamfc-pytorch SiamFC model (feature.N names)"
    if has("refine_head.") or has("mask_head."):
        return "a PySOT SiamMask model"
    if has("features.features.") and has("mask_model."):
        with_refine = "sharp" if has("refine_model.") else "base"
        return f"a foolwood/SiamMask model (SiamMask {with_refine})"
    if has("rpn_head.rpn2."):
        if has("backbone.layer0."):
            return "a PySOT SiamRPN++ MobileNetV2 model"
        return "a PySOT SiamRPN++ ResNet-50 (multi-level) model"
    if has("rpn_head.") and has("backbone.features."):
        return "a PySOT SiamRPN AlexNet model"
    if has("rpn_head."):
        return "a PySOT model"
    if has("backbone.conv1.0.") and not has("head."):
        return "a siamfc-pytorch SiamFC model"
    if has("fusion.mix.") and has("roi_heads."):
        return "a siammatch Siamese Mask R-CNN model"
    if has("backbone.body.") and has("roi_heads."):
        return "a torchvision Mask R-CNN / Faster R-CNN model"
    if has("backbone.") and has("head."):
        return "a siammatch model"
    return "an unrecognised model"
