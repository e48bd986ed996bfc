"""A tiny canvas set for the detection and segmentation command tests."""


def small_canvas_set(root):
    """A tiny canvas set (``cvtool data make-canvas``: 48 train, 12 test, 32 x 32, 1-2 digits)
    for the trainers' command tests; returns `root`."""
    from typer.testing import CliRunner

    from cvtool.cli import app

    args = ["data", "make-canvas", str(root), "--train", "48", "--test", "12", "--size", "32",
            "--max-objects", "2", "--min-scale", "0.5", "--max-scale", "0.8"]  # fmt: skip
    assert CliRunner().invoke(app, args).exit_code == 0
    return root
