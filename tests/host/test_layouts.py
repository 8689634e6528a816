"""The pure-Python contract: host runtime imports no amaranth; layouts pack and unpack exactly."""

import subprocess
import sys

import pytest

from bioloop.host import layouts as L


def test_host_runtime_imports_no_amaranth():
    """The driver, the backends (model backend included), the register map and the AER
    helpers run on the board, where amaranth does not install (DESIGN.md §7)."""
    code = ("import sys, bioloop.host.driver, bioloop.host.backends, bioloop.host.aer, "
            "bioloop.host.regmap, bioloop.host.layouts, bioloop.host.models.csr\n"
            "bad = sorted(m for m in sys.modules if m == 'amaranth' or m.startswith('amaranth.'))\n"
            "print(bad)\n"
            "assert not bad, bad\n")
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert res.returncode == 0, res.stdout + res.stderr


def test_gateware_layouts_are_built_from_the_contract():
    """Every Amaranth layout has the contract's fields at the contract's offsets."""
    from bioloop.gateware import layouts as G
    for name, layout in L.LAYOUTS.items():
        built = getattr(G, name)
        assert built.size == layout.size
        for m in layout:
            assert built[m.name].offset == layout.offsets[m.name], (name, m.name)
            assert built[m.name].width == m.size, (name, m.name)
    for py_enum, width in L.ENUM_BITS.items():
        shaped = getattr(G, py_enum.__name__)
        assert shaped.as_shape().width == width
        assert {m.name: m.value for m in shaped} == {m.name: m.value for m in py_enum}


@pytest.mark.parametrize("name", sorted(L.LAYOUTS))
def test_pack_agrees_with_amaranth(name):
    """pack/unpack give the same bits as Amaranth's own ``Layout.const(...).as_bits()``."""
    from amaranth.hdl import Const
    from bioloop.gateware import layouts as G
    import random
    layout, built = L.LAYOUTS[name], getattr(G, name)
    rng = random.Random(name)
    for _ in range(200):
        values = {}
        for m in layout:
            w = m.width
            lo, hi = ((-(1 << (w - 1)), (1 << (w - 1)) - 1) if m.signed else (0, (1 << w) - 1))
            if m.enum is not None:
                hi = max(m.enum)
            draw = [rng.randint(lo, hi) for _ in range(m.count or 1)]
            values[m.name] = draw if m.count else draw[0]
        bits = L.pack(layout, **values)
        init = {k: (list(v) if isinstance(v, list) else v) for k, v in values.items()}
        assert Const.cast(built.const(init)).value == bits
        assert L.unpack(layout, bits) == values


def test_pack_refuses_what_does_not_fit():
    with pytest.raises(ValueError, match="RoutedEntry.weight"):
        L.pack(L.ROUTED_ENTRY, weight=1 << 15)
    with pytest.raises(ValueError, match="AERWord.address"):
        L.pack(L.AER_WORD, address=-1)
    with pytest.raises(TypeError, match="AERWord.timestamp"):
        L.pack(L.AER_WORD, timestamp=1.5)
    with pytest.raises(ValueError, match="no field"):
        L.pack(L.AER_WORD, adress=1)


def test_known_word():
    """DESIGN.md §3: address bits 0-19, source 20-27, type 28-31, timestamp 32-63."""
    word = L.pack(L.AER_WORD, address=0x12345, source=0xAB, type=L.AERType.STIM, timestamp=0xDEADBEEF)
    assert word == 0xDEADBEEF_1AB12345
    assert L.unpack(L.AER_WORD, word) == {"address": 0x12345, "source": 0xAB,
                                          "type": L.AERType.STIM, "timestamp": 0xDEADBEEF}
