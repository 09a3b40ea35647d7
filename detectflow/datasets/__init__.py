"""Labelled datasets as users bring them (Pascal VOC today), read into one `Annotation` type,
with every defect repaired or skipped and reported. Used by the trainer and the command line;
the runtime core never imports it."""
