"""Losses for the CenterNet/TTFNet head (TensorFlow ops; the trainer runs on the TF backend).

Both are registered as Keras serializable so a saved `.keras` checkpoint reloads for resume.
"""

from __future__ import annotations

from typing import Any

import keras
import tensorflow as tf

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


def ltrb_giou(pred: Any, target: Any) -> Any:
    """Generalized IoU of two boxes given as distances (..., 4) from the SAME point to their
    left, top, right and bottom edges (FCOS/TTFNet): no grid or stride needed, since the shared
    point cancels out. Both must contain the point (distances >= 0)."""
    pred_area = (pred[..., 0] + pred[..., 2]) * (pred[..., 1] + pred[..., 3])
    target_area = (target[..., 0] + target[..., 2]) * (target[..., 1] + target[..., 3])
    inner = tf.minimum(pred, target)
    outer = tf.maximum(pred, target)
    inter = (inner[..., 0] + inner[..., 2]) * (inner[..., 1] + inner[..., 3])
    hull = (outer[..., 0] + outer[..., 2]) * (outer[..., 1] + outer[..., 3])
    union = pred_area + target_area - inter
    return inter / (union + EPS) - (hull - union) / (hull + EPS)


@keras.saving.register_keras_serializable(package="detectflow")
def box_giou_loss(y_true: Any, y_pred: Any) -> Any:
    """Weighted GIoU loss over the cells that regress a box: y_true[..., :4] is the target
    `ltrb` (trainer/targets.py), y_true[..., 4] the cell's weight."""
    y_true = tf.cast(y_true, tf.float32)
    weight = y_true[..., 4]
    loss = 1.0 - ltrb_giou(tf.cast(y_pred, tf.float32), y_true[..., :4])
    return tf.reduce_sum(loss * weight) / tf.maximum(tf.reduce_sum(weight), EPS)
