"""Cross-correlation ops, as pure functions over batches.

Shape shorthand / naming: ``x`` is the search (scene) feature map ``(B, C, H, W)``, ``z``
the template (reference) kernel ``(K, C, h, w)`` (or ``(K, O * C, h, w)`` for up-channel
kernels with ``O`` outputs). All three ops pair templates with searches in one of three
ways:

* ``K == B > 1`` — pairwise: template ``i`` with search ``i`` (training batches);
* ``K == 1`` — one template against every search (a tracker's multi-scale search, and
  one template with one search); the output batch is ``B``;
* ``B == 1`` — one search against every template (``match_many``: one scene, many
  references); the output batch is ``K``. The depth-wise op runs one convolution per
  template here; the others run one convolution in all.

The output spatial size is ``(H - h + 1, W - w + 1)``.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def _pairing(x: torch.Tensor, z: torch.Tensor) -> str:
    b, k = x.shape[0], z.shape[0]
    # One template and one search take the plain convolution: the pairwise path's
    # ``reshape(1, B * C, H, W)`` gives a batch of one an arbitrary batch stride, and
    # oneDNN then no longer sees a channels-last search as channels-last and falls back
    # to a convolution over ten times slower.
    if k == b and b > 1:
        return "pairwise"
    if k == 1:
        return "one_template"
    if b == 1:
        return "one_search"
    raise ValueError(f"cannot pair {k} templates with {b} searches (need K == B, B == 1 or K == 1)")


def xcorr_naive(x: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
    """Plain cross-correlation summed over channels (SiamFC).

    Args:
        x: ``(B, C, H, W)`` search features.
        z: ``(K, C, h, w)`` template features.

    Returns:
        ``(N, 1, H', W')`` with ``N = max(B, K)``.
    """
    mode = _pairing(x, z)
    if mode == "pairwise":
        b, c, h, w = x.shape
        out = F.conv2d(x.reshape(1, b * c, h, w), z, groups=b)
        return out.reshape(b, 1, out.shape[-2], out.shape[-1])
    if mode == "one_search":
        out = F.conv2d(x, z)
        return out.reshape(z.shape[0], 1, out.shape[-2], out.shape[-1])
    return F.conv2d(x, z)


def xcorr_depthwise(x: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
    """Channel-by-channel cross-correlation (SiamRPN++, SiamMask, SiamFC++).

    Args:
        x: ``(B, C, H, W)`` search features.
        z: ``(K, C, h, w)`` template kernels.

    Returns:
        ``(N, C, H', W')`` with ``N = max(B, K)``.
    """
    mode = _pairing(x, z)
    c = x.shape[1]
    kh, kw = z.shape[-2:]
    if mode == "pairwise":
        b, _, h, w = x.shape
        out = F.conv2d(x.reshape(1, b * c, h, w), z.reshape(b * c, 1, kh, kw), groups=b * c)
        return out.reshape(b, c, out.shape[-2], out.shape[-1])
    if mode == "one_search":
        # one depth-wise convolution per template: oneDNN has fast kernels for those, not
        # for one grouped convolution holding all K kernels of each channel
        return torch.cat([F.conv2d(x, t.reshape(c, 1, kh, kw), groups=c) for t in z])
    return F.conv2d(x, z.reshape(c, 1, kh, kw), groups=c)


def xcorr_upchannel(x: torch.Tensor, z: torch.Tensor, outputs: int) -> torch.Tensor:
    """Up-channel cross-correlation (SiamRPN / DaSiamRPN): each template holds ``outputs``
    full ``C``-channel kernels.

    Args:
        x: ``(B, C, H, W)`` search features.
        z: ``(K, outputs * C, h, w)`` template kernels; channel ``o * C + c`` is channel
            ``c`` of output ``o``'s kernel.
        outputs: kernels per template.

    Returns:
        ``(N, outputs, H', W')`` with ``N = max(B, K)``.
    """
    mode = _pairing(x, z)
    c = x.shape[1]
    kh, kw = z.shape[-2:]
    if z.shape[1] != outputs * c:
        raise ValueError(f"up-channel kernel has {z.shape[1]} channels, expected {outputs}x{c}")
    if mode == "pairwise":
        b, _, h, w = x.shape
        weight = z.reshape(b * outputs, c, kh, kw)
        out = F.conv2d(x.reshape(1, b * c, h, w), weight, groups=b)
        return out.reshape(b, outputs, out.shape[-2], out.shape[-1])
    if mode == "one_search":
        k = z.shape[0]
        out = F.conv2d(x, z.reshape(k * outputs, c, kh, kw))
        return out.reshape(k, outputs, out.shape[-2], out.shape[-1])
    return F.conv2d(x, z.reshape(outputs, c, kh, kw))
