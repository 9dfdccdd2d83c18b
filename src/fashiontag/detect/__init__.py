"""Clothing detection and tagging: annotation converters to a YOLO dataset, ultralytics training, prediction.

Files: `yolo_dataset.py` (boxes, validation, the dataset writer shared by both converters),
`convert_voc.py` (Pascal VOC XML), `convert_dataturks.py` (Dataturks JSON lines), `train.py`
(`detect-train`: ultralytics train + val mAP), `predict.py` (`detect`: tags, boxes, annotated images).
"""
