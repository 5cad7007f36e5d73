"""Chart files written by the Python assets, and their preview in the asset's metadata."""

from __future__ import annotations

import base64
import os
from pathlib import Path

import dagster as dg


def new_figure(width: float, height: float):
    """A figure and its axes, drawn off-screen.

    pyplot is imported here rather than at module level: it costs over a second, and the code
    server imports this package on every start and reload while only a run ever draws.
    """
    import matplotlib

    matplotlib.use("Agg")  # no display in a container: render straight to files
    import matplotlib.pyplot as plt

    return plt.subplots(figsize=(width, height))


def save_figure(figure, path: Path) -> dict[str, dg.MetadataValue]:
    """Write the figure as PNG (atomically: readers never see half a file) and describe it."""
    import matplotlib.pyplot as plt

    tmp = path.with_suffix(".png.tmp")
    figure.savefig(tmp, format="png", dpi=110, bbox_inches="tight")
    plt.close(figure)
    os.replace(tmp, path)
    image = base64.b64encode(path.read_bytes()).decode()
    return {
        "path": dg.MetadataValue.path(str(path)),
        "size_bytes": dg.MetadataValue.int(path.stat().st_size),
        "preview": dg.MetadataValue.md(f"![{path.stem}](data:image/png;base64,{image})"),
    }
