"""``gthd qa``: find the frames whose labels are wrong before anyone trains on them
(docs/qa.md). Pure checks in :mod:`.tracker` (the tracker's self-consistency),
:mod:`.timing` (the clock offset along the session) and :mod:`.evidence` (labels against
the image); :mod:`.runner` runs them over a session or a dataset file, :mod:`.report`
writes the table, the JSON and the pictures."""
