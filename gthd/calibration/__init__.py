"""Stage 2, calibration: camera intrinsics from board views, the tracker-to-camera
extrinsics T_cam_leap from clicked points (PnP), and the clock offset d (``gthd
calibrate``). Reads raw sessions (docs/session-format.md), writes the calibration file
(docs/calibration.md).
"""
