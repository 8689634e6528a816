"""Writes the generated Verilog of every block into ``hdl/`` (``make hdl``).

The designs are listed once here, with their default parameters; the
staleness test regenerates them into a temporary directory and compares.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from amaranth.back import verilog

__all__ = ["DESIGNS", "write_hdl"]


def _designs():
    from .aer_path import AERPath
    from .core import Core
    from .detector import Detector
    from .aer_encoder import AEREncoder
    from .homeostasis import Homeostasis
    from .stochastic_lanes import StochasticLanes
    from .aer_router import AERRouter
    from .safety import Safety
    from .stim_path import StimPath
    from .stim_unit import StimUnit
    return {
        "detector": Detector,
        "aer_encoder": AEREncoder,
        "aer_router": AERRouter,
        "aer_path": AERPath,
        "stochastic_lanes": StochasticLanes,
        "homeostasis": Homeostasis,
        "stim_unit": StimUnit,
        "safety": Safety,
        "stim_path": StimPath,
        "core": Core,
    }


DESIGNS = _designs()


ROOT = Path(__file__).resolve().parent.parent


def write_hdl(outdir: Path = ROOT / "hdl", docs_dir: Path = ROOT / "docs") -> list[Path]:
    """Write ``<name>.v`` for every design (default parameters) and the register map views.

    ``hdl/regmap.json`` and ``hdl/regmap.h`` go to ``outdir``, the Markdown
    register table to ``docs_dir``. Returns every path written.
    """
    from .regmap_export import write_regmap
    outdir = Path(outdir)
    outdir.mkdir(parents=True, exist_ok=True)
    paths = []
    for name, factory in DESIGNS.items():
        text = verilog.convert(factory(), name=name, emit_src=False)
        path = outdir / f"{name}.v"
        path.write_text(text)
        paths.append(path)
    # Vivado's names for the buses of Core (docs/board.md): a thin wrapper around hdl/core.v.
    from .core import top_wrapper
    wrapper = outdir / "bioloop_core.v"
    wrapper.write_text(top_wrapper())
    paths.append(wrapper)
    paths += write_regmap(outdir, Path(docs_dir))
    return paths


def main(argv=None):
    ap = argparse.ArgumentParser(description="Regenerate hdl/ from the Amaranth sources.")
    ap.add_argument("outdir", nargs="?", default=str(ROOT / "hdl"))
    ap.add_argument("--docs", default=str(ROOT / "docs"))
    args = ap.parse_args(argv)
    for p in write_hdl(Path(args.outdir), Path(args.docs)):
        print(p)


if __name__ == "__main__":
    main()
