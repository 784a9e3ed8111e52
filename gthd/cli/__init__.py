"""The ``gthd`` command line: a thin layer that parses options and calls the library.

One module per room (``capture``, ``simulate``, ``calibrate``, ``dataset``, ``qa``,
``benchmark``); each command parses its options, makes one library call and prints.
User errors become one clear line (:class:`click.ClickException`), never a traceback.
Progress goes to stderr, results to stdout.
"""

from __future__ import annotations

import logging
import os
import sys

import click

# OpenCV's own log lines ("[ WARN:0@1.2] global cap_v4l.cpp ...") say again, in its words,
# what our one-line errors say; set before any cv2 import. A user's setting wins.
os.environ.setdefault("OPENCV_LOG_LEVEL", "OFF")
os.environ.setdefault("OPENCV_FFMPEG_LOGLEVEL", "-8")  # FFmpeg's AV_LOG_QUIET

# The dataset writers log their warnings for library users; the CLI prints them once, from
# the report (DatasetReport.lines), not a second time through logging's last resort.
logging.getLogger("gthd.dataset").addHandler(logging.NullHandler())

from .. import __version__  # noqa: E402
from . import benchmark, calibrate, capture, dataset, qa, simulate  # noqa: E402
from ._common import user_errors  # noqa: E402


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(__version__, prog_name="gthd")
def main():
    """gthd: build and benchmark 2D hand pose datasets.

    Record RGB frames and Ultraleap hand tracking, calibrate the two together, build an
    HDF5 dataset of 2D keypoints, skeleton masks and hand boxes, and benchmark the
    skeleton-aware multi-scale heatmap models on it. Every stage also runs on a
    simulated rig with ground truth (``gthd simulate``).

    \b
    Example:
        gthd simulate capture/sim-0 --seed 0 --duration 10
        gthd session sheet capture/sim-0 -o sheet.png
    """


for command in (
    simulate.simulate,
    capture.capture,
    capture.session,
    calibrate.calibrate,
    calibrate.board,
    dataset.build_dataset_cmd,
    dataset.inspect,
    dataset.import_group,
    dataset.export_group,
    qa.qa,
    benchmark.benchmark,
    benchmark.predict,
):
    main.add_command(command)


def run() -> None:
    """The ``gthd`` program: :func:`main` with the exit statuses of a Unix tool: 0 done,
    1 an error (one ``Error:`` line), 2 a usage error, 130 stopped by Ctrl-C (128 +
    SIGINT; click alone says 1)."""
    try:
        status = main.main(standalone_mode=False)
    except click.ClickException as e:
        e.show()
        status = e.exit_code
    except (click.Abort, KeyboardInterrupt):
        click.echo("Aborted (Ctrl-C).", err=True)
        status = 130
    status = status if isinstance(status, int) else 0
    schema = sys.modules.get("gthd.dataset.schema")
    if schema is not None and schema.UNCLOSABLE:  # HDF5's own shutdown would crash on the failed file
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(status)
    sys.exit(status)


__all__ = ["main", "run", "user_errors"]
