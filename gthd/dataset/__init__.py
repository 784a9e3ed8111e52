"""Stage 3, dataset: projects tracked joints into 2D keypoints, skeleton masks and hand
boxes, written to one HDF5 file with splits (``gthd build-dataset``; imports from COCO
and LSMV, export to COCO); read back by PyTorch Datasets. The file is the door to the
benchmark: docs/dataset-format.md.
"""
