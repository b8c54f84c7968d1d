"""The detection side of dfjax: datasets, detectors, evaluation and reports."""
