"""Stage 4, benchmark: trains and scores the paper's UNet skeleton detector and its
skeleton-aware multi-scale heatmap network against baselines (``gthd benchmark``, entry
point :func:`gthd.benchmark.run.run_benchmark`), and runs a trained run on new images
(``gthd predict``). Reads a dataset file (docs/dataset-format.md); writes a run folder
(docs/benchmark.md).
"""
