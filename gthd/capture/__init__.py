"""Stage 1, capture: time-stamped RGB frames and Ultraleap tracking frames into a raw
session folder (docs/session-format.md), written with :class:`gthd.session.SessionWriter`
(``gthd capture``, ``gthd session check``). Sources plug in through
:mod:`gthd.capture.sources`: OpenCV cameras, the Ultraleap service, and (from outside
this package) the simulated rig.
"""
