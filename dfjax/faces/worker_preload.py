"""Imported by the face workers' fork server only (dfjax.faces.pipeline.start_face_finders): dlib's
landmark model (100 MB, about 0.4 s to read) is read there once, and every worker forked from the
server starts with it in memory instead of reading it again."""

from dfjax.faces.landmarks import shape_predictor

shape_predictor()
