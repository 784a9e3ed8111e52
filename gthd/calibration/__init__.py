"""Stage 2, calibration: camera intrinsics from board views, the tracker-to-camera
extrinsics T_cam_leap from clicked points (PnP), and the clock offset d. Reads raw
sessions, writes the calibration file. The command `gthd calibrate` arrives with issue 4.
"""
