"""Imported by the face workers' fork server only (dfjax.faces.pipeline.start_face_worker_server):
dlib's landmark model (100 MB, about 0.4 s to read) is read there once, and every worker forked from
the server starts with it in memory instead of reading it again. If it cannot be read here, nothing
is lost but time: the server must not die of it (Python's fork server only survives an ImportError),
and each worker then reads it itself and reports what is wrong as it always did."""

from dfjax.faces.landmarks import shape_predictor

try:
    shape_predictor()
except Exception:  # noqa: BLE001 - the workers read it again and say why it fails
    pass
