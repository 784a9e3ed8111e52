"""Stage 1, capture: time-stamped RGB frames and Ultraleap tracking frames into a raw
session folder (docs/session-format.md), written with :class:`gthd.session.SessionWriter`.
The command `gthd capture` arrives with issue 3; `gthd simulate` already writes this format.
"""
