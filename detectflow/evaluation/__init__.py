"""Scoring detections against labels, and what to do about the result.

- `metrics`: VOC/COCO mAP per class and by object size, and `EVAL_SCORE_THRESHOLD`, the one
  score cut-off every evaluation uses
- `thresholds`: F1-optimal score thresholds (per class; the serving threshold)
- `confusion`: the confusion matrix with a background row/column
- `bundle`: running a model bundle over a dataset (the served code path)
- `diagnosis`: all of the above for one run, and the files it leaves
- `plots` (matplotlib) and `gallery` (Pillow): the PNGs

Used by the trainer and the command line; the runtime core never imports it.
"""
