"""Scoring detections against labels: VOC/COCO metrics (`metrics`), running a bundle over a
dataset (`bundle`) and the plots (`plots`). Used by the trainer and the command line; the
runtime core never imports it."""
