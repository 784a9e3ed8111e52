"""Stage 4, benchmark: trains and scores the paper's UNet skeleton detector and its
skeleton-aware multi-scale heatmap network against baselines. The command
`gthd benchmark` arrives with issue 6.
"""
