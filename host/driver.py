"""The synchronous host driver of ``Core`` (DESIGN.md §7).

:class:`Driver` wraps any :class:`~bioloop.host.bus.Bus` — the PYNQ board,
the Verilated RTL, the Python model — with accessors named after what they
control::

    drv = Driver(bus)
    drv.thresholds[:] = 400                 # every channel
    drv.polarity[3] = "both"
    drv.refractory = 30                     # frames
    drv.routes.set(5, [("stim", 2, 256)])   # channel 5 -> lane 2, weight 1.0 (Q8.8)
    drv.theta[2] = 128
    drv.lane_codes[2] = 0xFFFF
    drv.enable()
    drv.send_samples(block)                 # int16, shape (frames, N)
    words = drv.receive_words(timeout_s=0.1)
    drv.counters["detections"], drv.status, drv.latency_probe

Every register name and offset comes from :mod:`bioloop.host.regmap`.
Values are checked against the map's range for the field *before* the bus
is touched, and a bad value raises ``ValueError``/``TypeError`` naming the
register (and the index for tables); nothing is written then. Tables are
write-only in hardware, so the driver keeps a shadow of what it wrote;
reading an entry it never wrote raises ``LookupError``.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np

from bioloop.host.layouts import FCLK_HZ, Polarity, Port
from bioloop.host.regmap import ID_VALUE, VERSION, Access, RegisterMap

from .bus import Bus, BusError, BusTimeout
from .samples import check_codes

__all__ = ["Driver", "DriverError", "LatencyProbe", "BusError", "BusTimeout"]

_U32 = (1 << 32) - 1


class DriverError(RuntimeError):
    """The bus does not lead to a bioloop core this driver understands."""


class LatencyProbe(NamedTuple):
    """The hardware loop-latency probe (DESIGN.md §6), in clock cycles."""
    last: int
    max: int
    samples: int

    @property
    def last_ns(self) -> float:
        return self.last * 1e9 / FCLK_HZ

    @property
    def max_ns(self) -> float:
        return self.max * 1e9 / FCLK_HZ


def _range(lo: int, hi: int, unit: str = "") -> str:
    return f"{lo}..{hi}" + (f" ({unit})" if unit else "")


def _integer(name: str, value, lo: int, hi: int, unit: str = "") -> int:
    """One rule for every value written to the core.

    Integers (Python or numpy) are checked against ``lo..hi``; a float is
    taken when it holds a whole number, so a float that does not (1.5, NaN,
    inf) is a wrong value, ``ValueError``; anything else (strings, None,
    booleans, containers) is a wrong type, ``TypeError``. Every message names
    the register and its range.
    """
    if isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{name} takes an integer {_range(lo, hi, unit)}, not the boolean {value!r}")
    if isinstance(value, (int, np.integer)):
        iv = int(value)
    elif isinstance(value, (float, np.floating)):
        if not math.isfinite(value) or value != math.floor(value):
            raise ValueError(f"{name} = {float(value)!r} is not a whole number; it takes integers "
                             f"{_range(lo, hi, unit)}")
        iv = int(value)
    else:
        raise TypeError(f"{name} takes an integer {_range(lo, hi, unit)}, not {type(value).__name__} {value!r}")
    if not lo <= iv <= hi:
        raise ValueError(f"{name} = {iv} is out of range {_range(lo, hi, unit)}")
    return iv


def _as_int_array(name: str, values, count: int, lo: int, hi: int, unit: str = "") -> np.ndarray:
    """``values`` broadcast to ``count`` int64s in ``lo..hi``, by the rule of :func:`_integer`."""
    rng = _range(lo, hi, unit)
    a = np.asarray(values)
    if a.dtype == object or a.dtype.kind not in "iufb":
        raise TypeError(f"{name} takes integers {rng}, not {a.dtype} values")
    if a.dtype.kind == "b":
        raise TypeError(f"{name} takes integers {rng}, not booleans")
    if a.ndim > 1:
        raise ValueError(f"{name} takes a scalar or a 1-D sequence, not shape {a.shape}")
    if a.ndim == 1 and a.shape[0] != count:
        raise ValueError(f"{name} got {a.shape[0]} values for {count} entries")
    a = np.broadcast_to(a, (count,))
    if a.dtype.kind == "f":
        bad = np.flatnonzero(~np.isfinite(a) | (a != np.round(a)))
        if bad.size:
            raise ValueError(f"{name}[{bad[0]}] = {float(a[bad[0]])!r} is not a whole number; it takes "
                             f"integers {rng}")
    elif a.dtype == np.uint64 and a.size and a.max() > np.iinfo(np.int64).max:
        i = int(np.argmax(a))
        raise ValueError(f"{name}[{i}] = {int(a[i])} is out of range {rng}")
    return a.astype(np.int64)


class _Field:
    """A scalar ``rw`` field of the map as a Python attribute of :class:`Driver`."""

    def __init__(self, doc: str = ""):
        self.__doc__ = doc

    def __set_name__(self, owner, name):
        self.name = name

    def __get__(self, drv, owner=None):
        if drv is None:
            return self
        return drv._read_field(self.name)

    def __set__(self, drv, value):
        drv._write_field(self.name, value)


class Table:
    """One write-only table of the core as a sequence: ``drv.thresholds[c] = 400``.

    Indexing takes an int or a slice; assignment takes a scalar (broadcast)
    or a sequence of the slice's length. The whole assignment is checked
    before the first bus write.
    """

    def __init__(self, drv: "Driver", name: str, convert=None):
        self._drv = drv
        self._table = drv.regmap.table(name)
        (self._field,) = self._table.fields
        self._convert = convert
        self._shadow: list[int | None] = [None] * self._table.depth
        self.name = name

    def __len__(self):
        return self._table.depth

    def _indices(self, key) -> list[int]:
        n = len(self)
        if isinstance(key, slice):
            return list(range(n))[key]
        if isinstance(key, (int, np.integer)) and not isinstance(key, bool):
            k = int(key)
            if not -n <= k < n:
                raise IndexError(f"{self.name}[{k}]: index out of range 0..{n - 1}")
            return [k % n]
        raise TypeError(f"{self.name} indices must be integers or slices, not {key!r}")

    def __getitem__(self, key):
        idx = self._indices(key)
        for i in idx:
            if self._shadow[i] is None:
                raise LookupError(f"{self.name}[{i}] has not been written by this driver; "
                                  "the table is write-only in hardware")
        values = [self._shadow[i] for i in idx]
        return values if isinstance(key, slice) else values[0]

    def __setitem__(self, key, values):
        idx = self._indices(key)
        if not idx:
            return
        if self._convert is not None:
            if isinstance(key, slice) and not isinstance(values, (str, Polarity)) \
                    and np.ndim(values) == 1:
                values = [self._convert(v) for v in values]
            else:
                values = self._convert(values)
        f = self._field
        arr = _as_int_array(self.name, values, len(idx), f.lo, f.hi, f.unit)
        bad = np.flatnonzero((arr < f.lo) | (arr > f.hi))
        if bad.size:
            j = int(bad[0])
            raise ValueError(f"{self.name}[{idx[j]}] = {int(arr[j])} is out of range {f.lo}..{f.hi}"
                             + (f" ({f.unit})" if f.unit else ""))
        for i, v in zip(idx, arr.tolist(), strict=True):
            self._drv._bus_write(self._table.offset + i * self._table.stride, f.encode(v))
            self._shadow[i] = v

    def __iter__(self):
        return iter(self[:])

    def __repr__(self):
        return f"<{self.name}[{len(self)}] table of {self._drv!r}>"


def _polarity(value) -> int:
    if isinstance(value, Polarity):
        return value.value
    if isinstance(value, str):
        try:
            return Polarity[value.upper()].value
        except KeyError:
            raise ValueError(f"polarity {value!r} is not one of "
                             f"{', '.join(p.name.lower() for p in Polarity)}") from None
    return value


def _port(value) -> int:
    if isinstance(value, Port):
        return value.value
    if isinstance(value, str):
        try:
            return Port[value.upper()].value
        except KeyError:
            raise ValueError(f"route port {value!r} is not 'stim' or 'host'") from None
    return value


class Routes:
    """The routing table: per source address up to F entries ``(port, target, weight)``.

    ``port`` is :class:`~bioloop.host.layouts.Port` or ``"stim"``/``"host"``;
    ``target`` a stim lane (0..K-1) for STIM or a relayed address for HOST;
    ``weight`` a signed Q8.8 integer (256 = 1.0).
    """

    def __init__(self, drv: "Driver"):
        self._drv = drv
        rm = drv.regmap
        self._routes = rm.table("routes")
        self._count = rm.table("route_count")
        self._fields = {f.name: f for f in self._routes.fields}
        self._shadow: dict[int, tuple] = {}

    def __len__(self):
        return self._count.depth

    def _check_address(self, address) -> int:
        if not isinstance(address, (int, np.integer)) or isinstance(address, bool):
            raise TypeError(f"routes: the source address must be an integer, not {address!r}")
        if not 0 <= address < len(self):
            raise ValueError(f"routes: source address {address} is out of range 0..{len(self) - 1}")
        return int(address)

    def _check_entries(self, address: int, entries) -> list[tuple[int, int, int]]:
        rm = self._drv.regmap
        if isinstance(entries, (str, bytes)) or not hasattr(entries, "__iter__"):
            raise TypeError(f"routes[{address}] takes a sequence of (port, target, weight) entries, "
                            f"not {type(entries).__name__} {entries!r}")
        entries = list(entries)
        if len(entries) > rm.F:
            raise ValueError(f"routes[{address}]: {len(entries)} entries exceed the fanout F = {rm.F}")
        checked = []
        for slot, entry in enumerate(entries):
            try:
                if isinstance(entry, (str, bytes)):
                    raise TypeError
                port, target, weight = entry
            except (TypeError, ValueError):
                raise TypeError(f"routes[{address}][{slot}] must be (port, target, weight), "
                                f"not {entry!r}") from None
            what = f"routes[{address}][{slot}]"
            f = self._fields
            port = _integer(f"{what} port", _port(port), f["route_port"].lo, f["route_port"].hi)
            if port == Port.STIM.value:      # a STIM target is a lane, whatever the field could hold
                target = _integer(f"{what} target", target, 0, rm.K - 1, "stim lane")
            else:
                target = _integer(f"{what} target", target, f["route_target"].lo, f["route_target"].hi,
                                  "relayed address")
            weight = _integer(f"{what} weight", weight, f["route_weight"].lo, f["route_weight"].hi, "Q8.8")
            checked.append((port, target, weight))
        return checked

    def check(self, address: int, entries) -> list[tuple[int, int, int]]:
        """Check ``entries`` for ``address`` as :meth:`set` would, without touching the bus.

        Returns the entries as ``(port, target, weight)`` integers.
        """
        return self._check_entries(self._check_address(address), entries)

    def set(self, address: int, entries) -> None:
        """Replace the routes of ``address``.

        Written as: count 0, the entries, then the count, so the router never
        follows a count into half-written entries.
        """
        address = self._check_address(address)
        checked = self._check_entries(address, entries)
        drv, F, f = self._drv, self._drv.regmap.F, self._fields
        count_field = self._count.fields[0]
        drv._bus_write(self._count.offset + address * self._count.stride, count_field.encode(0))
        self._shadow[address] = ()
        for slot, (port, target, weight) in enumerate(checked):
            base = self._routes.offset + (address * F + slot) * self._routes.stride
            word0 = f["route_target"].encode(target) | f["route_port"].encode(port)
            drv._bus_write(base + 4 * f["route_target"].word, word0)
            drv._bus_write(base + 4 * f["route_weight"].word, f["route_weight"].encode(weight))
        drv._bus_write(self._count.offset + address * self._count.stride,
                       count_field.encode(len(checked)))
        self._shadow[address] = tuple((Port(p), t, w) for p, t, w in checked)

    def clear(self, address: int) -> None:
        """Remove every route of ``address`` (its SPIKE words then count as unmapped)."""
        self.set(address, [])

    def get(self, address: int) -> tuple:
        """The entries this driver last wrote for ``address``."""
        address = self._check_address(address)
        if address not in self._shadow:
            raise LookupError(f"routes[{address}] has not been written by this driver; "
                              "the table is write-only in hardware")
        return self._shadow[address]

    __getitem__ = get

    def __setitem__(self, address, entries):
        self.set(address, entries)


class Driver:
    """Synchronous driver of one ``Core`` over a :class:`~bioloop.host.bus.Bus`.

    Parameters
    ----------
    bus : Bus
        The backend.
    regmap : RegisterMap, optional
        The map of the core. By default the driver reads ``n_channels``,
        ``n_lanes`` and ``fanout`` from the core (their offsets do not depend
        on the parameters) and builds the map itself.

    Raises
    ------
    DriverError
        If the ID or the major version read from the bus is not bioloop's.
    """

    # Scalar configuration: one attribute per ``rw`` field of the map, added below the class
    # by _add_scalar_fields() (names, docs and units from bioloop.host.regmap, written nowhere
    # else). ``enable`` is the exception: the methods enable()/disable()/enabled() drive it.

    def __init__(self, bus: Bus, regmap: RegisterMap | None = None):
        for method in ("read32", "write32", "send_samples", "receive_words"):
            if not callable(getattr(bus, method, None)):
                raise TypeError(f"the bus {bus!r} has no {method}(); see bioloop.host.bus.Bus")
        self.bus = bus
        probe = regmap or RegisterMap()
        ident = bus.read32(probe.register("id").offset)
        version = bus.read32(probe.register("version").offset)
        if ident != ID_VALUE:
            raise DriverError(f"no bioloop core on this bus: id reads {ident:#010x}, "
                              f"expected {ID_VALUE:#010x}")
        if version >> 16 != VERSION >> 16:
            raise DriverError(f"core register map version {version >> 16}.{version & 0xFFFF} is not "
                              f"supported by this driver ({VERSION >> 16}.x)")
        if regmap is None:
            N, K, F = (bus.read32(probe.register(n).offset) for n in ("n_channels", "n_lanes", "fanout"))
            try:
                regmap = RegisterMap(N, K, F)
            except (TypeError, ValueError) as exc:
                raise DriverError(f"the core reports impossible parameters: {exc}") from None
        else:
            for name, want in (("n_channels", regmap.N), ("n_lanes", regmap.K), ("fanout", regmap.F)):
                got = bus.read32(regmap.register(name).offset)
                if got != want:
                    raise DriverError(f"the core has {name} = {got} but the given map has {want}")
        self.regmap = regmap
        self.thresholds = Table(self, "thresholds")
        self.polarity = Table(self, "polarity", convert=_polarity)
        self.theta = Table(self, "theta")
        self.homeo_src = Table(self, "homeo_src")
        self.homeo_target = Table(self, "homeo_target")
        self.lane_codes = Table(self, "lane_codes")
        self.pulse_lengths = Table(self, "pulse_lengths")
        self.routes = Routes(self)
        self._sealed = True

    def __setattr__(self, name, value):
        # A mistyped register name (drv.homeo_windw = 3000) must not silently become a
        # Python attribute that never reaches the bus.
        if getattr(self, "_sealed", False) and not hasattr(type(self), name) and name not in vars(self):
            raise AttributeError(f"Driver has no register or accessor {name!r}; the writable ones are "
                                 f"{sorted(n for n, v in vars(type(self)).items() if type(v).__name__ == '_Field')}")
        super().__setattr__(name, value)

    def __repr__(self):
        return f"Driver({type(self.bus).__name__}, N={self.N}, K={self.K}, F={self.F})"

    @property
    def N(self) -> int:
        """Recording channels of the core."""
        return self.regmap.N

    @property
    def K(self) -> int:
        """Stim lanes of the core."""
        return self.regmap.K

    @property
    def F(self) -> int:
        """Maximum route fanout of the core."""
        return self.regmap.F

    # -- raw access -----------------------------------------------------------------------

    def _bus_write(self, addr: int, value: int) -> None:
        self.bus.write32(addr, value & _U32)

    def _bus_read(self, addr: int) -> int:
        value = self.bus.read32(addr)
        if not isinstance(value, (int, np.integer)) or not 0 <= value <= _U32:
            raise BusError(f"read of {addr:#x} returned {value!r}, not a 32-bit word")
        return int(value)

    def read_register(self, name: str) -> int:
        """The raw 32-bit value of register ``name``."""
        return self._bus_read(self.regmap.register(name).offset)

    def _read_field(self, name: str) -> int:
        reg, f = self.regmap.field(name)
        return f.decode(self._bus_read(reg.offset))

    def _write_field(self, name: str, value) -> None:
        reg, f = self.regmap.field(name)
        if f.access is not Access.RW:
            raise AttributeError(f"{name} is {f.access.value}, not writable")
        if isinstance(value, (bool, np.bool_)) and f.width == 1:
            value = int(value)
        value = _integer(name, value, f.lo, f.hi, f.unit)
        if name in ("theta_min", "theta_max"):
            lo, hi = ((value, self._read_field("theta_max")) if name == "theta_min"
                      else (self._read_field("theta_min"), value))
            if lo > hi:
                raise ValueError(f"{name} = {value} would put theta_min = {lo} above theta_max = {hi} (Q8.8); "
                                 "set both with set_theta_limits(theta_min, theta_max)")
        word = f.encode(value)
        if len(reg.fields) > 1:
            # Keep the other rw fields of the register (e.g. control.enable); pulses stay 0.
            current = self._bus_read(reg.offset)
            for other in reg.fields:
                if other is not f and other.access is Access.RW:
                    word |= current & other.mask
        self._bus_write(reg.offset, word)

    def _pulse(self, name: str) -> None:
        reg, f = self.regmap.field(name)
        current = self._bus_read(reg.offset)
        keep = sum(o.mask for o in reg.fields if o.access is Access.RW)
        self._bus_write(reg.offset, (current & keep) | f.encode(1))

    def set_theta_limits(self, theta_min, theta_max) -> None:
        """Set the homeostasis clamps θ_min ≤ θ_max (Q8.8) together.

        Both are checked first; they are written in the order that keeps
        θ_min ≤ θ_max after each write (the attributes ``theta_min`` and
        ``theta_max`` refuse a value that crosses the other).

        Raises
        ------
        TypeError, ValueError
            A value that is not an integer in range, or ``theta_min > theta_max``.
        """
        (_, fmin), (_, fmax) = self.regmap.field("theta_min"), self.regmap.field("theta_max")
        lo = _integer("theta_min", theta_min, fmin.lo, fmin.hi, fmin.unit)
        hi = _integer("theta_max", theta_max, fmax.lo, fmax.hi, fmax.unit)
        if lo > hi:
            raise ValueError(f"theta_min = {lo} is above theta_max = {hi} (Q8.8)")
        if lo > self._read_field("theta_max"):
            self._write_field("theta_max", hi)
            self._write_field("theta_min", lo)
        else:
            self._write_field("theta_min", lo)
            self._write_field("theta_max", hi)

    # -- control --------------------------------------------------------------------------

    def enable(self) -> None:
        """Start the datapath."""
        self._write_field("enable", 1)

    def disable(self) -> None:
        """Stop the datapath (configuration is kept)."""
        self._write_field("enable", 0)

    @property
    def enabled(self) -> bool:
        return bool(self._read_field("enable"))

    def soft_reset(self) -> None:
        """Clear the datapath's state (pipelines, accumulators); configuration stays."""
        self._pulse("soft_reset")

    def clear_counters(self) -> None:
        """Zero every counter and the latency probe."""
        self._pulse("clear_counters")

    # -- status ---------------------------------------------------------------------------

    @property
    def identity(self) -> dict:
        """ID, version and parameters as read from the core."""
        return {name: self.read_register(name)
                for name in ("id", "version", "n_channels", "n_lanes", "fanout", "fclk_hz")}

    @property
    def counters(self) -> dict[str, int]:
        """A snapshot of every counter (one read each)."""
        return {name: self.read_register(name) for name in self.regmap.counters()}

    @property
    def status(self) -> dict[str, bool]:
        """The sticky status bits; they stay set until :meth:`clear_status`."""
        reg = self.regmap.register("status")
        word = self._bus_read(reg.offset)
        return {f.name: bool(f.decode(word)) for f in reg.fields}

    def clear_status(self, *names: str) -> None:
        """Clear the named status bits (all when none is named) by writing 1s."""
        reg = self.regmap.register("status")
        fields = {f.name: f for f in reg.fields}
        unknown = [n for n in names if n not in fields]
        if unknown:
            raise ValueError(f"no status bit named {', '.join(unknown)}; "
                             f"the bits are {', '.join(fields)}")
        chosen = names or tuple(fields)
        self._bus_write(reg.offset, sum(fields[n].encode(1) for n in chosen))

    @property
    def latency_probe(self) -> LatencyProbe:
        """Last and maximum loop latency since clear, in cycles, and their count."""
        return LatencyProbe(self.read_register("latency_last"), self.read_register("latency_max"),
                            self.read_register("latency_samples"))

    @property
    def min_frame_cycles(self) -> int:
        """Fewest clock cycles between two frames' last beats (fixed when the core was built)."""
        return self._read_field("min_frame_cycles")

    @property
    def safety_duty_window(self) -> int:
        """Safety: the duty cap's window in clock cycles (fixed when the core was built)."""
        return self._read_field("safety_duty_window")

    def theta_now(self, lane: int) -> int:
        """The current θ of ``lane`` (Q8.8) as Homeostasis has moved it."""
        self.theta_select = lane
        return self._read_field("theta_value")

    # -- optional capabilities of the bus ----------------------------------------------------

    @property
    def has_leds(self) -> bool:
        """Whether the bus can report the LED vector per frame (:class:`~bioloop.host.bus.LedReadback`).

        The simulated backends (model, verilator) can; the board cannot (its
        LEDs drive tissue, and the host reconstructs the light from STIM words).
        """
        return callable(getattr(self.bus, "leds", None))

    def leds(self) -> np.ndarray:
        """Lit fraction of every LED in each frame sent since the last call, float32 (frames, K).

        Raises
        ------
        DriverError
            If the bus has no LED read-back (see :attr:`has_leds`).
        """
        if not self.has_leds:
            raise DriverError(f"the bus {type(self.bus).__name__} cannot report the LED vector; "
                              "LED read-back exists on the model and verilator backends only")
        leds = np.asarray(self.bus.leds(), dtype=np.float32)
        if leds.ndim != 2 or leds.shape[1] != self.K:
            raise BusError(f"the bus reported LEDs of shape {leds.shape}, expected (frames, {self.K})")
        return leds

    # -- streams --------------------------------------------------------------------------

    def send_samples(self, samples) -> None:
        """Send a block of frames: ``int16`` ADC codes of shape ``(frames, N)``.

        Raises
        ------
        TypeError
            If the samples are not integers (floats are not rounded for you).
        ValueError
            On the wrong shape or channel count, non-finite values, or an
            integer outside -32768..32767 (any integer dtype is taken when
            its values are int16 codes, :mod:`bioloop.host.samples`).
        """
        a = np.asarray(samples)
        if a.dtype.kind in "fc":
            bad = np.argwhere(~np.isfinite(a))
            if bad.size:
                where = (f"channel {bad[0][1]}, sample {bad[0][0]}" if a.ndim == 2
                         else f"index {tuple(int(i) for i in bad[0])}")
                kind = "NaN" if np.isnan(a[tuple(bad[0])]) else "infinity"
                raise ValueError(f"samples contain {kind} at {where}; the detector needs finite "
                                 "int16 ADC codes")
        if a.dtype.kind not in "iu":
            raise TypeError(f"samples must be int16 ADC codes, not {a.dtype}; scale and round them, "
                            "check the range -32768..32767, then use .astype(np.int16)")
        a = check_codes(a, "samples")       # the host detector's rule too (bioloop.host.samples)
        if a.ndim != 2:
            raise ValueError(f"samples must have shape (frames, {self.N}), not {a.shape}")
        if a.shape[1] != self.N:
            raise ValueError(f"samples have {a.shape[1]} channels; this core has N = {self.N}")
        if a.shape[0] == 0:
            return
        # Little-endian int16 pairs read as uint32 put channel 2i in the low half (DESIGN.md §3).
        a = np.ascontiguousarray(a, dtype="<i2")
        self.bus.send_samples(a.view("<u4"))

    def receive_words(self, timeout_s: float = 1.0, max_words: int = 65536) -> np.ndarray:
        """AER words from the core (``uint64``, DESIGN.md §3), up to ``max_words``.

        Raises
        ------
        BusTimeout
            When the transport did not deliver within ``timeout_s`` (see
            :meth:`bioloop.host.bus.Bus.receive_words`); the session can
            carry on and call again.
        """
        if not isinstance(timeout_s, (int, float)) or not math.isfinite(timeout_s) or timeout_s <= 0:
            raise ValueError(f"timeout_s must be a positive number of seconds, not {timeout_s!r}")
        if not isinstance(max_words, (int, np.integer)) or max_words < 1:
            raise ValueError(f"max_words must be a positive integer, not {max_words!r}")
        words = np.asarray(self.bus.receive_words(int(max_words), float(timeout_s)))
        if words.dtype != np.uint64 or words.ndim != 1:
            raise BusError(f"the bus returned {words.dtype} words of shape {words.shape}; "
                           "AER words are a 1-D uint64 array")
        if words.shape[0] > max_words:
            raise BusError(f"the bus returned {words.shape[0]} words, more than max_words = {max_words}")
        return words


#: ``rw`` fields with their own methods instead of a plain attribute.
_NOT_SCALARS = frozenset({"enable"})


def _add_scalar_fields(cls) -> None:
    """One :class:`_Field` attribute per ``rw`` field of the register map (the names do not
    depend on N, K, F; ranges are checked against the driver's own map at each write)."""
    for f in RegisterMap().fields(Access.RW):
        if f.name in _NOT_SCALARS:
            continue
        doc = f.doc + (f" ({f.unit})" if f.unit else "") + "."
        field = _Field(doc)
        field.__set_name__(cls, f.name)
        setattr(cls, f.name, field)


_add_scalar_fields(Driver)
