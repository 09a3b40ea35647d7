"""The detector network: a small MobileNetV2-style backbone (fused blocks at strides 4 and 8,
as in EfficientNetV2), an FPN-lite neck down to the output
stride (4 or 8), and an anchor-free CenterNet/TTFNet head (class heatmap + distances to the box
edges). Stride 4 keeps objects of ~10 px apart; stride 8 halves the neck and head work for
data whose objects are all large (trainer/plan.py chooses).

The builder takes the Keras *module* as an argument so the very same architecture can be built
with Keras 3 (training, PTQ export) and with tf_keras (quantization-aware training through
tensorflow-model-optimization, which only understands tf_keras models). Layer names are fixed,
so weights move between the two by name. Every layer used here is one tfmot can quantize.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from types import ModuleType
from typing import Any

STRIDES = (4, 8)  # supported output strides
NECK_LEVELS = {"c4": 16, "c3": 8, "c2": 4}  # backbone levels the top-down path fuses, by stride
HEATMAP_PRIOR_BIAS = -2.19  # sigmoid(-2.19) ~ 0.1: the focal-loss prior, stable first steps
LTRB_UNIT_PX = 16.0  # the ltrb head predicts edge distances in units of 16 input pixels
# Keras' default 0.99 leaves BN statistics ~20 % at their initial values after 150 steps:
# inference then disagrees badly with training in a short CPU run. 0.9 settles in ~50 steps.
BN_MOMENTUM = 0.9

# (out channels, stride, expansion) per inverted-residual block, grouped by output stride.
BACKBONE = {
    "c2": [(24, 2, 4), (24, 1, 3)],  # stride 4
    "c3": [(40, 2, 3), (40, 1, 3)],  # stride 8
    "c4": [(64, 2, 4), (64, 1, 4), (64, 1, 4)],  # stride 16
    "c5": [(96, 2, 4), (96, 1, 4)],  # stride 32
}
# Levels built of fused blocks (one 3x3 conv instead of 1x1 expand + depthwise 3x3 + 1x1
# project; their expansion is not used). Depthwise convolutions at high resolution are the
# slowest part of a training step on CPU (their gradient kernels): on 2 cores, batch 16 at
# 320x288, fusing c2 and c3 cut a step from 1.86 s to 0.63 s and inference from 0.48 s to 0.30 s,
# with about as many multiply-adds and 2 % more parameters (EfficientNetV2 did the same).
FUSED_LEVELS = ("c2", "c3")


@dataclass(frozen=True)
class ModelConfig:
    num_classes: int
    width: float = 1.0  # channel multiplier of backbone and neck
    neck_channels: int = 48
    head_channels: int = 48
    stride: int = 4  # output stride: one of STRIDES

    def __post_init__(self) -> None:
        if self.stride not in STRIDES:
            raise ValueError(f"output stride must be one of {STRIDES}, got {self.stride}")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _ch(channels: int, width: float) -> int:
    """Scale channels, rounded to a multiple of 8 (fast kernels, like MobileNet)."""
    return max(8, int(channels * width + 4) // 8 * 8)


class _Builder:
    """Small helpers over one Keras module (keras or tf_keras)."""

    def __init__(self, keras: ModuleType) -> None:
        self.layers = keras.layers

    def conv_bn_relu(self, x: Any, filters: int, kernel: int, stride: int, name: str) -> Any:
        conv = self.layers.Conv2D(
            filters, kernel, stride, "same", use_bias=False, name=f"{name}_conv"
        )
        x = conv(x)
        x = self.layers.BatchNormalization(momentum=BN_MOMENTUM, name=f"{name}_bn")(x)
        return self.layers.ReLU(6.0, name=f"{name}_relu")(x)

    def dw_bn_relu(self, x: Any, stride: int, name: str) -> Any:
        x = self.layers.DepthwiseConv2D(3, stride, "same", use_bias=False, name=f"{name}_dw")(x)
        x = self.layers.BatchNormalization(momentum=BN_MOMENTUM, name=f"{name}_dwbn")(x)
        return self.layers.ReLU(6.0, name=f"{name}_dwrelu")(x)

    def project(self, x: Any, filters: int, name: str) -> Any:
        """1x1 conv + BN without activation (linear bottleneck)."""
        x = self.layers.Conv2D(filters, 1, use_bias=False, name=f"{name}_proj")(x)
        return self.layers.BatchNormalization(momentum=BN_MOMENTUM, name=f"{name}_projbn")(x)

    def inverted_residual(self, x: Any, out: int, stride: int, expand: int, name: str) -> Any:
        in_channels = int(x.shape[-1])
        h = self.conv_bn_relu(x, in_channels * expand, 1, 1, f"{name}_exp")
        h = self.dw_bn_relu(h, stride, name)
        h = self.project(h, out, name)
        if stride == 1 and in_channels == out:
            h = self.layers.Add(name=f"{name}_add")([x, h])
        return h

    def fused_residual(self, x: Any, out: int, stride: int, name: str) -> Any:
        """3x3 conv + BN + ReLU6, with a residual connection where the shapes allow."""
        h = self.conv_bn_relu(x, out, 3, stride, f"{name}_fused")
        if stride == 1 and int(x.shape[-1]) == out:
            h = self.layers.Add(name=f"{name}_add")([x, h])
        return h

    def separable(self, x: Any, filters: int, name: str) -> Any:
        """Depthwise 3x3 + pointwise 1x1, both BN + ReLU6."""
        x = self.dw_bn_relu(x, 1, name)
        return self.conv_bn_relu(x, filters, 1, 1, f"{name}_pw")


def build_detector(
    config: ModelConfig,
    input_shape: tuple[int | None, int | None, int] = (None, None, 3),
    keras: ModuleType | None = None,
    list_outputs: bool = False,
) -> Any:
    """Return a functional model: normalized image (B,H,W,3) in [-1, 1] ->
    {"heatmap": (B,H/s,W/s,C) in [0,1], "ltrb": (B,H/s,W/s,4) >= 0 in units of LTRB_UNIT_PX}
    for the output stride s = config.stride
    (or the list [heatmap, ltrb] with `list_outputs`, for tfmot, which needs a flat model).

    H and W must be multiples of 32.
    """
    if keras is None:
        import keras as keras_module

        keras = keras_module
    b = _Builder(keras)
    layers = keras.layers
    inputs = keras.Input(shape=input_shape, name="image")
    x = b.conv_bn_relu(inputs, _ch(16, config.width), 3, 2, "stem")
    features: dict[str, Any] = {}
    for level, blocks in BACKBONE.items():
        for i, (out, stride, expand) in enumerate(blocks):
            if level in FUSED_LEVELS:
                x = b.fused_residual(x, _ch(out, config.width), stride, f"{level}_b{i}")
            else:
                x = b.inverted_residual(x, _ch(out, config.width), stride, expand,
                                        f"{level}_b{i}")
        features[level] = x

    neck = _ch(config.neck_channels, config.width)
    p = b.conv_bn_relu(features["c5"], neck, 1, 1, "lat5")
    for level in (name for name, stride in NECK_LEVELS.items() if stride >= config.stride):
        lateral = b.conv_bn_relu(features[level], neck, 1, 1, f"lat{level[1]}")
        upsampled = layers.UpSampling2D(2, interpolation="nearest", name=f"up{level[1]}")(p)
        p = layers.Add(name=f"fuse{level[1]}")([lateral, upsampled])
        p = b.separable(p, neck, f"smooth{level[1]}")

    head = config.head_channels
    hm = b.separable(b.separable(p, head, "hm_h0"), head, "hm_h1")
    hm = layers.Conv2D(
        config.num_classes, 1, name="hm_out",
        bias_initializer=keras.initializers.Constant(HEATMAP_PRIOR_BIAS),
    )(hm)
    heatmap = layers.Activation("sigmoid", name="heatmap", dtype="float32")(hm)

    box = b.separable(b.separable(p, head, "box_h0"), head, "box_h1")
    box = layers.Conv2D(4, 1, name="box_out", bias_initializer=keras.initializers.Constant(1.0))(
        box
    )
    ltrb = layers.ReLU(name="ltrb", dtype="float32")(box)
    outputs = [heatmap, ltrb] if list_outputs else {"heatmap": heatmap, "ltrb": ltrb}
    return keras.Model(inputs, outputs, name="detectflow_centernet")
