"""Clothing detection and tagging: annotation converters to a YOLO dataset, ultralytics training, prediction.

Files: `classes.py` (the clothing classes and label aliases), `convert_voc.py` (Pascal VOC XML),
`convert_dataturks.py` (Dataturks JSON lines), `train.py` (`detect-train`: ultralytics train + val mAP),
`predict.py` (`detect`: tags, boxes, annotated images). The converters' samples go through the one YOLO
dataset writer, `yolo/dataset.py`.
"""
