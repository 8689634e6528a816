"""Every bench of `make bench` runs, at a tiny size, and writes its fragment (bioloop.sim.benches)."""

import pytest

from bioloop.sim import benches

#: Benches that build Verilator designs or run Yosys synthesis: minutes even when tiny, so they run
#: under BIOLOOP_LONG=1 (make test-long); their designs are covered by the tests of tests/gateware.
NEEDS_TOOLS = {"aer_path", "stim", "core", "verilator", "driver", "board", "area_timing"}


@pytest.mark.parametrize("name", [pytest.param(n, marks=[pytest.mark.long] if n in NEEDS_TOOLS else [])
                                  for n in benches.BENCHES])
def test_bench_runs_at_a_tiny_size(name, tmp_path):
    if name == "sweep":
        pytest.importorskip("dask.distributed", reason="the sweep bench needs dask (the [sweep] extra)")
    path = benches.run([name], out=tmp_path, smoke=True)[0]
    assert path == tmp_path / f"{name}.md"
    text = path.read_text()
    assert text.startswith("## ") and len(text.splitlines()) > 3, text


def test_assemble_joins_fragments_in_order_and_relinks_figures(tmp_path):
    frags = tmp_path / "bench"
    frags.mkdir()
    (frags / "codec.md").write_text("## codec\n\n![rd](codec_rd.png)\n")
    (frags / "aer_path.md").write_text("## aer path\n")
    (frags / "zzz_extra.md").write_text("## extra\n")
    page = benches.assemble(frags)
    text = page.read_text()
    assert page == tmp_path / "benchmarks.md"
    assert text.index("## aer path") < text.index("## codec") < text.index("## extra")
    assert "](bench/codec_rd.png)" in text


def test_unknown_bench_is_refused(tmp_path):
    with pytest.raises(ValueError, match="unknown bench nope"):
        benches.run(["nope"], out=tmp_path)
    assert benches.main(["nope", "--smoke", "--out", str(tmp_path)]) == 2
