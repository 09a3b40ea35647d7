"""The trainer: VOC data -> parallel preprocessing cache -> Keras detector -> TFLite bundle.

Importing this package imports nothing heavy: `trainer.cache` runs without TensorFlow (its
worker processes must start fast), and TensorFlow is imported only by the modules that build,
train or convert the model.
"""
