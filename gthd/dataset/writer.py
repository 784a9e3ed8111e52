"""The one way a dataset file is written: :class:`DatasetOutput`, behind
``build_dataset`` (sessions), ``import_coco`` and ``import_lsmv``.

Each of the three turns its source into :class:`~gthd.dataset.schema.Sample` s; the
output owns everything else, the same way for all three:

- the path: refused where a file is there (unless ``force``) or its folder is not,
  when the output is made, before any input is read;
- the file: written under a temporary name (:class:`~gthd.dataset.schema.DatasetWriter`)
  and renamed into place at the end; an error leaves nothing behind;
- the root attributes every file carries beside the schema's own: ``sources`` (a list,
  each entry's ``kind`` first: ``sessions``, ``coco`` or ``lsmv``), ``split_by``,
  ``split_seed``, ``split_fractions``, ``skeleton_thickness``, ``box_margin``,
  ``crop_margin``, what the caller adds (``command``...) and the report
  (:meth:`DatasetReport.record`) as ``build_report`` (sessions) or ``import_report``;
- the work: jobs made into samples by worker processes or threads a window at a time,
  written in the jobs' order (the same inputs give the same file, with any number of
  workers; memory stays flat), ``progress(done, total)`` after each window;
- the counts: samples with a hand and NoHand, and what was left out, why (the source's
  reasons) and a few examples, which make one warning line;
- the splits (:class:`SplitRule`) and the :class:`DatasetReport` returned, whose
  warnings are also logged (logger ``gthd.dataset.writer``).
"""

from __future__ import annotations

import contextlib
import logging
import multiprocessing
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ProcessPoolExecutor, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .schema import SPLITS, DatasetWriter, Sample, assign_splits, check_fractions, check_output

log = logging.getLogger(__name__)

KINDS = ("sessions", "coco", "lsmv")
"""What a dataset file is written from; the file's ``sources[0]["kind"]``."""

_CHUNK = 8  # jobs per task handed to a worker
_WINDOW = 64  # jobs in flight per worker
_EXAMPLES = 3  # examples kept per reason for leaving a job out


@dataclass(frozen=True)
class SplitRule:
    """How the samples go to train/val/test (root attributes ``split_by``, ``split_seed``
    and, when drawn, ``split_fractions``).

    by: the name recorded as ``split_by`` ("random", "subject", "sequence", "none"...).
    group: a ``meta`` column (``subject``, ``session``, ``frame_index``) whose samples of
        one value go to one split together (:func:`~.schema.assign_splits`); None: each
        sample is drawn on its own.
    only: every sample to this split instead, nothing drawn.
    """

    by: str = "random"
    group: str | None = None
    seed: int = 0
    fractions: tuple[float, float, float] = (0.75, 0.10, 0.15)
    only: str | None = None

    def __post_init__(self):
        if self.only is not None and self.only not in SPLITS:
            raise ValueError(f"a split is one of {', '.join(SPLITS)}, got {self.only!r}")
        check_fractions(self.fractions)

    def attrs(self) -> dict:
        drawn = {} if self.only is not None else {"split_fractions": list(self.fractions)}
        return {"split_by": self.by, "split_seed": self.seed, **drawn}

    def assign(self, writer: DatasetWriter) -> np.ndarray:
        """(N,) uint8 split of every sample written."""
        if self.only is not None:
            return np.full(len(writer), SPLITS.index(self.only), dtype=np.uint8)
        groups = None if self.group is None else writer.column(self.group)
        return assign_splits(len(writer), groups, self.fractions, self.seed)


@dataclass(frozen=True)
class DatasetReport:
    """What writing a dataset file did: the same facts whatever the source.

    kind: what was read ("sessions", "coco", "lsmv"). samples, hand, nohand: the samples
    written, with a hand and NoHand. splits: samples per split. left_out: per reason the
    source gives, the jobs (frames, images, annotations) that are not in the file;
    examples: a few of them by name, for the reasons that warn. warnings: lines, also
    logged. details: the source's own facts (JSON), and notes: its lines about them.
    """

    path: Path
    kind: str
    samples: int
    hand: int
    nohand: int
    splits: dict[str, int]
    left_out: dict[str, int]
    examples: dict[str, list[str]] = field(default_factory=dict)
    warnings: tuple[str, ...] = ()
    details: dict = field(default_factory=dict)
    notes: tuple[str, ...] = ()
    reasons: dict[str, str] = field(default_factory=dict, repr=False, compare=False)  # reason -> how lines() says it

    def lines(self) -> list[str]:
        """The report for a terminal: the counts, what was left out, the splits, the
        source's notes and the warnings (``warning: ...``)."""
        return [
            f"{self.samples} samples: {self.hand} with a hand, {self.nohand} NoHand",
            "left out: " + _left_out_text(self.left_out, self.reasons),
            "splits: " + ", ".join(f"{k} {v}" for k, v in self.splits.items()),
            *self.notes,
            *(f"warning: {w}" for w in self.warnings),
        ]

    def record(self) -> dict:
        """The report as the file keeps it (JSON, in the root attribute ``build_report``
        or ``import_report``): all of it but the path."""
        return {
            "kind": self.kind,
            "samples": self.samples,
            "hand": self.hand,
            "nohand": self.nohand,
            "splits": self.splits,
            "left_out": self.left_out,
            "examples": self.examples,
            "warnings": list(self.warnings),
            "details": self.details,
        }


def _left_out_text(left_out: dict[str, int], reasons: dict[str, str]) -> str:
    return ", ".join(f"{n} {reasons.get(k, k)}" for k, n in left_out.items()) or "nothing"


def _work_chunk(work: Callable, jobs: Sequence) -> list:
    return [work(j) for j in jobs]


class DatasetOutput:
    """One dataset file being written (the module docstring says what it owns).

    Made before the inputs are read (the path is checked then); fed inside
    ``with output.open(...)`` by :meth:`results`, :meth:`add`, :meth:`leave_out` and
    :meth:`warn`; done by :meth:`finish`, which returns the :class:`DatasetReport`. A block
    left without :meth:`finish` (an exception) leaves nothing at ``path``.

    Args:
        path: the dataset file to write.
        kind: what is read, one of :data:`KINDS`.
        origin: what is read, as an error names it (a folder, a file).
        reasons: why a job may be left out: key -> how a report line says it, in the
            order the lines list them (e.g. ``{"corrupt": "corrupt frames"}``).
        split: how the samples are split.
        thickness, box_margin, crop_margin: how the samples are made
            (:func:`~.samples.make_sample`, :attr:`sample_options`), recorded in the file.
        workers: worker processes (``processes``) or threads making samples; 1: this process.
        force: replace a file at ``path``.
        progress: called with (jobs done, jobs).
    """

    def __init__(
        self,
        path: str | Path,
        *,
        kind: str,
        origin: str,
        reasons: dict[str, str],
        split: SplitRule,
        thickness: str = "thick",
        box_margin: float = 0.05,
        crop_margin: float = 0.25,
        workers: int = 1,
        processes: bool = False,
        force: bool = False,
        progress: Callable[[int, int], None] | None = None,
    ):
        if kind not in KINDS:
            raise ValueError(f"kind must be one of {', '.join(KINDS)}, got {kind!r}")
        self.path = Path(path)
        check_output(self.path, force)
        self.kind, self.origin, self.reasons, self.split = kind, origin, dict(reasons), split
        self.sample_options = {"thickness": thickness, "box_margin": box_margin, "crop_margin": crop_margin}  # for make_sample
        self.workers, self.processes, self.force, self.progress = max(1, workers), processes, force, progress
        self.left_out = dict.fromkeys(self.reasons, 0)
        self.hand = self.nohand = 0
        self._examples: dict[str, list[str]] = {}
        self._warnings: list[str] = []
        self._pool = None
        self._writer: DatasetWriter | None = None
        self._report: DatasetReport | None = None

    def warn(self, line: str) -> None:
        """A warning for the report (one line)."""
        self._warnings.append(line)

    def leave_out(self, reason: str, example: str | None = None, count: int = 1) -> None:
        """Count ``count`` jobs left out for ``reason`` (one of ``reasons``). An example (a
        name, with why) is kept, up to three per reason: the reasons given examples make
        one warning line."""
        self.left_out[reason] += count
        if example is not None and len(kept := self._examples.setdefault(reason, [])) < _EXAMPLES:
            kept.append(example)

    @contextlib.contextmanager
    def open(self, source: dict, attrs: dict) -> Iterator[DatasetOutput]:
        """Start the workers and the temporary file, with the root attributes
        ``sources`` (``[{"kind": kind, **source}]``), the split's, the samples' options
        and ``attrs`` (which win over them)."""
        if self.workers > 1 and self.processes:
            self._pool = ProcessPoolExecutor(self.workers, mp_context=multiprocessing.get_context("fork"))
        elif self.workers > 1:
            self._pool = ThreadPoolExecutor(self.workers)
        try:
            own = {
                "sources": [{"kind": self.kind, **source}],
                **self.split.attrs(),
                "skeleton_thickness": self.sample_options["thickness"],
                "box_margin": self.sample_options["box_margin"],
                "crop_margin": self.sample_options["crop_margin"],
            }
            self._writer = DatasetWriter(self.path, attrs={**own, **attrs}, force=self.force)
            try:
                yield self
            finally:
                if self._report is None:  # an exception, or no finish(): nothing at path
                    self._writer.abort()
        finally:
            if self._pool is not None:
                self._pool.shutdown(cancel_futures=True)
                self._pool = None

    def results(self, jobs: Sequence, work: Callable) -> Iterator[tuple[object, object]]:
        """``(job, work(job))`` for every job, in the jobs' order, made by the workers a
        window at a time (the next window is being made while this one is written).
        For worker processes ``work`` must pickle: a module's function, or a
        ``functools.partial`` of one."""
        total, done = len(jobs), 0
        self._tell(0, total)
        window = _WINDOW * self.workers
        pending = None  # the window whose results come next
        for start in range(0, total + window, window):  # one step past the end, to write the last window
            batch = jobs[start : start + window]
            submitted = (batch, self._submit(batch, work)) if len(batch) else None
            if pending is not None:
                done_batch, parts = pending
                results = (r for part in parts for r in (part.result() if isinstance(part, Future) else part))
                yield from zip(done_batch, results)
                done += len(done_batch)
                self._tell(done, total)
            pending = submitted

    def _submit(self, batch: Sequence, work: Callable) -> list:
        chunks = [batch[i : i + _CHUNK] for i in range(0, len(batch), _CHUNK)]
        if self._pool is None:
            return [_work_chunk(work, c) for c in chunks]
        return [self._pool.submit(_work_chunk, work, c) for c in chunks]

    def _tell(self, done: int, total: int) -> None:
        if self.progress is not None:
            self.progress(done, total)

    def add(self, sample: Sample) -> None:
        """Write one sample (queued, in order) and count it."""
        self._writer.add(sample)
        self.hand += bool(sample.has_hand)
        self.nohand += not sample.has_hand

    def finish(self, details: dict | None = None, notes: Sequence[str] = (), extras: dict[str, np.ndarray] | None = None) -> DatasetReport:
        """Split the samples, record the report, close and rename the file into place.

        Args:
            details: the source's own facts (JSON), kept in the report.
            notes: the source's lines about them, for :meth:`DatasetReport.lines`.
            extras: whole arrays beside the schema's (``group/name`` -> one row per sample).

        Raises:
            ValueError: no sample was written ("no usable sample", with what was left out).
        """
        writer = self._writer
        if len(writer) == 0:
            raise ValueError(f"{self.origin}: no usable sample (left out: {_left_out_text(self.left_out, self.reasons)})")
        split = self.split.assign(writer)
        writer.write_column("split", split)
        for key, values in (extras or {}).items():
            writer.write_extra(key, values)
        report = DatasetReport(
            path=self.path,
            kind=self.kind,
            samples=len(writer),
            hand=self.hand,
            nohand=self.nohand,
            splits={name: int((split == i).sum()) for i, name in enumerate(SPLITS)},
            left_out=dict(self.left_out),
            examples={k: list(v) for k, v in self._examples.items()},
            warnings=(*self._warnings, *self._left_out_warning()),
            details=dict(details or {}),
            notes=tuple(notes),
            reasons=self.reasons,
        )
        writer.set_attr("build_report" if self.kind == "sessions" else "import_report", report.record())
        writer.close()
        self._report = report
        for line in report.warnings:
            log.warning("%s", line)
        return report

    def _left_out_warning(self) -> list[str]:
        """One line for the reasons given examples: their counts and the first examples."""
        named = [k for k in self.left_out if self._examples.get(k)]
        if not named:
            return []
        examples = [e for k in named for e in self._examples[k]][:_EXAMPLES]
        total = sum(self.left_out[k] for k in named)
        more = f" and {total - len(examples)} more" if total > len(examples) else ""
        counts = ", ".join(f"{self.left_out[k]} {self.reasons[k]}" for k in named)
        return [f"left out {counts}: {', '.join(examples)}{more}"]
