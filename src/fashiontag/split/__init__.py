"""Hanger vs worn: YOLO person detection over a dataset (runner.py, detect.py), the tiny demo detector
(tiny_detector.py), and the training modes that use the split (modes.py, separate.py)."""
