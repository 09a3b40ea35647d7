"""The trainer: VOC data -> parallel preprocessing cache -> Keras detector -> TFLite bundle.

Importing this package imports nothing heavy: `trainer.cache` runs without TensorFlow (its
worker processes must start fast), and TensorFlow is imported only by the modules that build,
train or convert the model.
"""

import os

# TensorFlow's C++ start-up chatter (CUDA probing, oneDNN notices) buries the training log;
# keep warnings and errors. A user's own setting wins.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
