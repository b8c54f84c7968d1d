"""Face detection, landmarks, alignment, masks, head pose and gaze."""
