"""gthd: build and benchmark 2D hand pose datasets (RGB camera + Ultraleap tracker)."""

__version__ = "0.1.0"
