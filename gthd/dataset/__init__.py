"""Stage 3, dataset: projects tracked joints into 2D keypoints, skeleton masks and hand
boxes, written to one HDF5 file with splits; read back by a PyTorch Dataset. The command
`gthd build-dataset` arrives with issue 5.
"""
