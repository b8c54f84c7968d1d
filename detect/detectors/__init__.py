"""The deepfake detectors: each module here defines detectors and files them in
`detect.registry.DETECTORS`, which imports every module of this package when first read."""
