r"""eCLIP's heatmap processor: an image re-weighted by where an expert looked.

A small attention module that turns an image and a gaze heatmap into an
"expert view" of the image, of the same size, which the image tower then
encodes like any other image.
"""

from numbers import Integral

import torch
from torch import nn

__all__ = ["HeatmapProcessor"]


class HeatmapProcessor(nn.Module):
    r"""Image and heatmap to an expert view of the image (eCLIP's design).

    With a strided convolution :math:`P` (kernel and stride :math:`p`, width
    :math:`w`) cutting an image into :math:`N = (H/p)(W/p)` patch tokens,

    .. math::

        Q = P(h \odot x), \qquad K = V = P(x), \qquad
        y = \operatorname{MHA}(Q, K, V)\, W_o, \qquad
        \tilde x = P^{\top}(y),

    where :math:`h \odot x` is the image weighted by the heatmap (broadcast
    over channels), MHA is multi-head attention with the heatmap-weighted
    patches as queries and the image patches as keys and values, :math:`W_o`
    an output projection, and :math:`P^{\top}` a transposed convolution of
    the same kernel and stride back to an image of the input's size. Where
    the expert looked, the queries carry the image's content and attend to
    the matching patches; elsewhere they are near zero and the output is a
    blend of the whole image.

    Trained from scratch: eCLIP first teaches it to reconstruct the image
    from an all-ones heatmap (:meth:`reconstruction_loss`), so that the expert
    views are images the tower can read before they enter the contrastive
    batch.

    Parameters
    ----------
    in_channels : int, default=3
    patch_size : int, default=16
        Kernel and stride of the patchifying convolution; the image's height
        and width must be multiples of it.
    width : int, default=256
        Channels of the patch tokens.
    heads : int, default=8
        Attention heads; ``width`` must be a multiple of it.

    Examples
    --------
    >>> import torch
    >>> from skgap.train import HeatmapProcessor
    >>> proc = HeatmapProcessor(patch_size=8, width=32, heads=4)
    >>> x = torch.randn(2, 3, 32, 32)
    >>> h = torch.rand(2, 32, 32)
    >>> proc(x, h).shape
    torch.Size([2, 3, 32, 32])
    """

    def __init__(self, in_channels=3, patch_size=16, width=256, heads=8):
        super().__init__()
        for name, value in (("in_channels", in_channels), ("patch_size", patch_size),
                            ("width", width), ("heads", heads)):
            if isinstance(value, bool) or not isinstance(value, Integral) or value < 1:
                raise ValueError(f"{name} must be a positive integer, got {value!r}.")
        in_channels, patch_size, width, heads = map(int, (in_channels, patch_size, width, heads))
        if width % heads:
            raise ValueError(f"width={width} must be a multiple of heads={heads}.")
        self.in_channels = in_channels
        self.patch_size = patch_size
        self.width = width
        self.heads = heads
        self.patchify = nn.Conv2d(in_channels, width, kernel_size=patch_size, stride=patch_size)
        self.attention = nn.MultiheadAttention(width, heads, batch_first=True)
        self.out_proj = nn.Linear(width, width)
        self.unpatchify = nn.ConvTranspose2d(
            width, in_channels, kernel_size=patch_size, stride=patch_size
        )

    def _check(self, image, heatmap):
        if not isinstance(image, torch.Tensor) or image.ndim != 4:
            raise ValueError(
                "image must be a tensor (batch, channels, height, width), got "
                f"{getattr(image, 'shape', type(image).__name__)}."
            )
        B, C, H, W = image.shape
        if C != self.in_channels:
            raise ValueError(f"image has {C} channels, the processor takes {self.in_channels}.")
        if H % self.patch_size or W % self.patch_size:
            raise ValueError(
                f"image size {H}x{W} is not a multiple of patch_size={self.patch_size}."
            )
        if not isinstance(heatmap, torch.Tensor):
            raise TypeError(f"heatmap must be a tensor, got {type(heatmap).__name__}.")
        if heatmap.ndim == 3:
            heatmap = heatmap[:, None]
        if heatmap.ndim != 4 or heatmap.shape[1] != 1 or heatmap.shape[0] != B \
                or tuple(heatmap.shape[2:]) != (H, W):
            raise ValueError(
                f"heatmap must have shape ({B}, {H}, {W}) or ({B}, 1, {H}, {W}) to match the "
                f"images; got {tuple(heatmap.shape)}."
            )
        # A NaN heatmap does not show in the output (attention maps NaN queries to
        # finite values), so a bad map would silently become a plausible expert view.
        if (~torch.isfinite(heatmap) | (heatmap < 0)).any():
            raise ValueError("heatmap must hold finite, non-negative weights.")
        return heatmap.to(image.dtype)

    def forward(self, image, heatmap):
        """The expert view, same shape as ``image``.

        Parameters
        ----------
        image : torch.Tensor of shape (batch, channels, height, width)
        heatmap : torch.Tensor of shape (batch, height, width) or (batch, 1, height, width)
            Non-negative weights, typically scaled to a maximum of 1.

        Returns
        -------
        expert : torch.Tensor of shape (batch, channels, height, width)
        """
        heatmap = self._check(image, heatmap)
        B, _, H, W = image.shape
        keys = self.patchify(image).flatten(2).transpose(1, 2)
        queries = self.patchify(heatmap * image).flatten(2).transpose(1, 2)
        y, _ = self.attention(queries, keys, keys, need_weights=False)
        y = self.out_proj(y).transpose(1, 2)
        grid = y.reshape(B, self.width, H // self.patch_size, W // self.patch_size)
        return self.unpatchify(grid)

    def reconstruction_loss(self, image):
        r"""Mean squared error of reconstructing ``image`` from an all-ones heatmap.

        .. math:: \mathcal L_{\mathrm{rec}} = \frac{1}{|x|}
            \lVert \mathrm{proc}(x, \mathbf 1) - x \rVert_2^2

        Parameters
        ----------
        image : torch.Tensor of shape (batch, channels, height, width)

        Returns
        -------
        loss : torch.Tensor (0-d)
        """
        ones = torch.ones_like(image[:, :1])
        return torch.nn.functional.mse_loss(self(image, ones), image)
