"""Losses for the CenterNet/TTFNet head (TensorFlow ops; the trainer runs on the TF backend).

Both are registered as Keras serializable so a saved `.keras` checkpoint reloads for resume.
"""

from __future__ import annotations

from typing import Any

import keras
import tensorflow as tf

from trainer.model import LTRB_UNIT_PX, STRIDE

EPS = 1e-6


@keras.saving.register_keras_serializable(package="detectflow")
def heatmap_focal_loss(y_true: Any, y_pred: Any) -> Any:
    """CenterNet's penalty-reduced focal loss, normalized by the number of objects."""
    y_true = tf.cast(y_true, tf.float32)
    p = tf.clip_by_value(tf.cast(y_pred, tf.float32), EPS, 1.0 - EPS)
    positive = tf.cast(tf.equal(y_true, 1.0), tf.float32)
    negative_weight = tf.pow(1.0 - y_true, 4.0)
    pos_loss = tf.math.log(p) * tf.square(1.0 - p) * positive
    neg_loss = tf.math.log(1.0 - p) * tf.square(p) * negative_weight * (1.0 - positive)
    num_pos = tf.maximum(tf.reduce_sum(positive), 1.0)
    return -(tf.reduce_sum(pos_loss) + tf.reduce_sum(neg_loss)) / num_pos


def ltrb_to_boxes(ltrb: Any) -> Any:
    """(B,H,W,4) predicted distances (units of LTRB_UNIT_PX) -> (B,H,W,4) xyxy input pixels."""
    shape = tf.shape(ltrb)
    ys = (tf.cast(tf.range(shape[1]), tf.float32) + 0.5) * STRIDE
    xs = (tf.cast(tf.range(shape[2]), tf.float32) + 0.5) * STRIDE
    cy, cx = tf.meshgrid(ys, xs, indexing="ij")
    dist = tf.cast(ltrb, tf.float32) * LTRB_UNIT_PX
    return tf.stack(
        [cx - dist[..., 0], cy - dist[..., 1], cx + dist[..., 2], cy + dist[..., 3]], axis=-1
    )


def giou(pred: Any, target: Any) -> Any:
    """Generalized IoU of matching xyxy boxes (..., 4) -> (...)."""
    area_p = (pred[..., 2] - pred[..., 0]) * (pred[..., 3] - pred[..., 1])
    area_t = (target[..., 2] - target[..., 0]) * (target[..., 3] - target[..., 1])
    inter_wh = tf.maximum(
        tf.minimum(pred[..., 2:], target[..., 2:]) - tf.maximum(pred[..., :2], target[..., :2]),
        0.0,
    )
    inter = inter_wh[..., 0] * inter_wh[..., 1]
    union = area_p + area_t - inter
    iou = inter / (union + EPS)
    hull_max = tf.maximum(pred[..., 2:], target[..., 2:])
    hull_wh = hull_max - tf.minimum(pred[..., :2], target[..., :2])
    hull = hull_wh[..., 0] * hull_wh[..., 1]
    return iou - (hull - union) / (hull + EPS)


@keras.saving.register_keras_serializable(package="detectflow")
def box_giou_loss(y_true: Any, y_pred: Any) -> Any:
    """Weighted GIoU loss over the cells that regress a box (y_true[..., 4] is the weight)."""
    y_true = tf.cast(y_true, tf.float32)
    weight = y_true[..., 4]
    loss = 1.0 - giou(ltrb_to_boxes(y_pred), y_true[..., :4])
    return tf.reduce_sum(loss * weight) / tf.maximum(tf.reduce_sum(weight), EPS)
