"""detectflow: self-hostable, serverless-style object detection.

The core package never imports TensorFlow or any deploy unit (functions/, frontend/, trainer/).
"""

__version__ = "0.1.0"
