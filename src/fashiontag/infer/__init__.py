"""Inference: fold-averaged prediction, test-time augmentation, tagging, submissions."""
