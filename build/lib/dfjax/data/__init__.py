"""On-disk face sets, augmentation and procedural synthetic faces."""
