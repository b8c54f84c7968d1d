"""The 3-D head model shared by the synthetic renderer, the pose estimator and the gaze estimator.

Conventions (one place, so renderer and estimators cannot drift apart):

- Model coordinates, millimetres: x to image right, y down, z away from the camera when the face is
  frontal (the nose tip has the most negative z). The origin is roughly the centre of the head, so
  rotations about it look like a head turning on its neck.
- `R` maps model coordinates to OpenCV camera coordinates (x right, y down, z forward); a frontal
  face has `R = I`.
- Euler angles in degrees: positive yaw turns the face toward image right, positive pitch tilts it up
  (chin forward), positive roll tilts the head clockwise in the image.
  `R = Rz(roll) @ Ry(yaw) @ Rx(pitch)`: pitch first in the head's own frame, then yaw, then roll.
- Gaze is eye-in-head, the same sign convention: positive yaw looks toward image right, positive
  pitch looks up. The pupil sits where the gaze ray from the eyeball centre leaves the eyeball.
"""

from __future__ import annotations

import numpy as np

# The 68-point mean face of OpenFace / dlib (iBUG-68 order), as published in
# yinguobing/head-pose-estimation `assets/model.txt` (MIT; pose_estimator.py MODEL_3D_POINTS) and
# DeepFaceLab's `LandmarksProcessor.landmarks_68_3D`. Its axes already are x right, y down and z away
# from the camera; units are roughly millimetres (face contour 145 mm wide, nose tip to chin 85 mm).
_OPENFACE_68 = np.array([
    [-73.393523, -29.801432, 47.667532], [-72.775014, -10.949766, 45.909403],
    [-70.533638, 7.929818, 44.842580], [-66.850058, 26.074280, 43.141114],
    [-59.790187, 42.564390, 38.635298], [-48.368973, 56.481080, 30.750622],
    [-34.121101, 67.246992, 18.456453], [-17.875411, 75.056892, 3.609035],
    [0.098749, 77.061286, -0.881698], [17.477031, 74.758448, 5.181201],
    [32.648966, 66.929021, 19.176563], [46.372358, 56.311389, 30.770570],
    [57.343480, 42.419126, 37.628629], [64.388482, 25.455880, 40.886309],
    [68.212038, 6.990805, 42.281449], [70.486405, -11.666193, 44.142567],
    [71.375822, -30.365191, 47.140426], [-61.119406, -49.361602, 14.254422],
    [-51.287588, -58.769795, 7.268147], [-37.804800, -61.996155, 0.442051],
    [-24.022754, -61.033399, -6.606501], [-11.635713, -56.686759, -11.967398],
    [12.056636, -57.391033, -12.051204], [25.106256, -61.902186, -7.315098],
    [38.338588, -62.777713, -1.022953], [51.191007, -59.302347, 5.349435],
    [60.053851, -50.190255, 11.615746], [0.653940, -42.193790, -13.380835],
    [0.804809, -30.993721, -21.150853], [0.992204, -19.944596, -29.284036],
    [1.226783, -8.414541, -36.948060], [-14.772472, 2.598255, -20.132003],
    [-7.180239, 4.751589, -23.536684], [0.555920, 6.562900, -25.944448],
    [8.272499, 4.661005, -23.695741], [15.214351, 2.643046, -20.858157],
    [-46.047290, -37.471411, 7.037989], [-37.674688, -42.730510, 3.021217],
    [-27.883856, -42.711517, 1.353629], [-19.648268, -36.754742, -0.111088],
    [-28.272965, -35.134493, -0.147273], [-38.082418, -34.919043, 1.476612],
    [19.265868, -37.032306, -0.665746], [27.894191, -43.342445, 0.247660],
    [37.437529, -43.110822, 1.696435], [45.170805, -38.086515, 4.894163],
    [38.196454, -35.532024, 0.282961], [28.764989, -35.484289, -1.172675],
    [-28.916267, 28.612716, -2.240310], [-17.533194, 22.172187, -15.934335],
    [-6.684590, 19.029051, -22.611355], [0.381001, 20.721118, -23.748437],
    [8.375443, 19.035460, -22.721995], [18.876618, 22.394109, -15.610679],
    [28.794412, 28.079924, -3.217393], [19.057574, 36.298248, -14.987997],
    [8.956375, 39.634575, -22.554245], [0.381549, 40.395647, -23.591626],
    [-7.428895, 39.836405, -22.406106], [-18.160634, 36.677899, -15.121907],
    [-24.377490, 28.677771, -4.785684], [-6.897633, 25.475976, -20.893742],
    [0.340663, 26.014269, -22.220479], [8.444722, 25.326198, -21.025520],
    [24.474473, 28.323008, -5.712776], [8.449166, 30.596216, -20.671489],
    [0.205322, 31.408738, -21.903670], [-7.198266, 30.844876, -20.328022],
])

#: For each of the 68 points, the index of its mirror image across the face's vertical mid-line.
MIRROR_68 = np.array(
    list(range(16, -1, -1))                      # jaw
    + list(range(26, 16, -1))                    # brows
    + [27, 28, 29, 30, 35, 34, 33, 32, 31]       # nose
    + [45, 44, 43, 42, 47, 46, 39, 38, 37, 36, 41, 40]  # eyes
    + [54, 53, 52, 51, 50, 49, 48, 59, 58, 57, 56, 55]  # outer lips
    + [64, 63, 62, 61, 60, 67, 66, 65]           # inner lips
)

# Head centre in the source model's coordinates: about ear height between the brows and the nose
# base, and ~100 mm behind the nose tip (a head is ~200 mm deep).
_HEAD_CENTRE = np.array([0.0, -25.0, 60.0])


def _symmetrise(points: np.ndarray) -> np.ndarray:
    mirrored = points[MIRROR_68] * np.array([-1.0, 1.0, 1.0])
    return (points + mirrored) / 2.0


#: Mean 3-D face, (68, 3) float64 millimetres, x-symmetric, origin at the head centre.
MODEL_68: np.ndarray = _symmetrise(_OPENFACE_68) - _HEAD_CENTRE
MODEL_68.setflags(write=False)

#: Eyeball radius over the distance between one eye's corners (36-39): ~12 mm over ~30 mm.
EYEBALL_RADIUS_TO_EYE_WIDTH: float = 0.4

RIGHT_EYE = slice(36, 42)  # the subject's right eye: image left in a frontal face
LEFT_EYE = slice(42, 48)


def rotation_from_euler(yaw: float, pitch: float, roll: float) -> np.ndarray:
    """Rotation (3, 3) from model to camera coordinates for angles in degrees."""
    y, p, r = np.radians([yaw, pitch, roll])
    cy, sy, cp, sp, cr, sr = np.cos(y), np.sin(y), np.cos(p), np.sin(p), np.cos(r), np.sin(r)
    r_yaw = np.array([[cy, 0.0, -sy], [0.0, 1.0, 0.0], [sy, 0.0, cy]])
    r_pitch = np.array([[1.0, 0.0, 0.0], [0.0, cp, sp], [0.0, -sp, cp]])
    r_roll = np.array([[cr, -sr, 0.0], [sr, cr, 0.0], [0.0, 0.0, 1.0]])
    return r_roll @ r_yaw @ r_pitch


def euler_from_rotation(rotation: np.ndarray) -> tuple[float, float, float]:
    """(yaw, pitch, roll) in degrees of a model-to-camera rotation; inverse of `rotation_from_euler`."""
    m = np.asarray(rotation, dtype=np.float64)
    yaw = np.degrees(np.arcsin(np.clip(m[2, 0], -1.0, 1.0)))
    pitch = np.degrees(np.arctan2(-m[2, 1], m[2, 2]))
    roll = np.degrees(np.arctan2(m[1, 0], m[0, 0]))
    return float(yaw), float(pitch), float(roll)


def gaze_vector(pitch: float, yaw: float) -> np.ndarray:
    """Unit gaze direction (3,) in model coordinates for eye-in-head angles in degrees."""
    p, y = np.radians([pitch, yaw])
    return np.array([np.cos(p) * np.sin(y), -np.sin(p), -np.cos(p) * np.cos(y)])


def gaze_angles(vector: np.ndarray) -> tuple[float, float]:
    """(pitch, yaw) in degrees of a gaze direction in model coordinates; inverse of `gaze_vector`."""
    v = np.asarray(vector, dtype=np.float64)
    v = v / np.linalg.norm(v)
    pitch = np.degrees(np.arcsin(np.clip(-v[1], -1.0, 1.0)))
    yaw = np.degrees(np.arctan2(v[0], -v[2]))
    return float(pitch), float(yaw)


def eye_widths(model: np.ndarray = MODEL_68) -> np.ndarray:
    """Distance between the corners of each eye (2,), right eye (36-39) then left eye (42-45)."""
    return np.array([np.linalg.norm(model[39] - model[36]), np.linalg.norm(model[45] - model[42])])


def eyeball_radii(model: np.ndarray = MODEL_68) -> np.ndarray:
    """Eyeball radius of each eye (2,) in model units."""
    return EYEBALL_RADIUS_TO_EYE_WIDTH * eye_widths(model)


def eyeball_centres(model: np.ndarray = MODEL_68) -> np.ndarray:
    """3-D eyeball centres (2, 3): one radius behind the centre of each eye's six contour points.

    Row 0 is the subject's right eye (points 36-41, image left), row 1 the left eye (42-47). Looking
    straight ahead, the pupil therefore sits exactly at the contour centre.
    """
    model = np.asarray(model, dtype=np.float64)
    contour = np.stack([model[RIGHT_EYE].mean(axis=0), model[LEFT_EYE].mean(axis=0)])
    radii = eyeball_radii(model)
    return contour + radii[:, None] * np.array([0.0, 0.0, 1.0])


def pupil_points(pitch: float, yaw: float, model: np.ndarray = MODEL_68) -> np.ndarray:
    """3-D pupil centres (2, 3) in model coordinates for an eye-in-head gaze in degrees."""
    return eyeball_centres(model) + eyeball_radii(model)[:, None] * gaze_vector(pitch, yaw)


def project(points3d: np.ndarray, rotation: np.ndarray, translation: np.ndarray,
            focal: float, cx: float, cy: float) -> np.ndarray:
    """Pinhole projection (N, 2) of model points under `camera = R @ model + t`."""
    cam = np.asarray(points3d, dtype=np.float64) @ np.asarray(rotation).T + np.ravel(translation)
    return np.stack([focal * cam[:, 0] / cam[:, 2] + cx, focal * cam[:, 1] / cam[:, 2] + cy], axis=1)


def camera_matrix(focal: float, cx: float, cy: float) -> np.ndarray:
    """The 3x3 OpenCV intrinsic matrix for `project`'s pinhole camera."""
    return np.array([[focal, 0.0, cx], [0.0, focal, cy], [0.0, 0.0, 1.0]])
