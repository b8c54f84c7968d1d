"""The face pipeline as a library: face detectors and masks (each a registry by name), landmarks,
tracking, smoothing, alignment, head pose and gaze; `pipeline` puts them together for videos and images."""
