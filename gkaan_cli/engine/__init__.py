"""Engines built on the model and video layers: prediction, training, evaluation."""
