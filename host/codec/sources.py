"""Where samples come from and where decoded data goes.

A :class:`Source` describes a recording (rate, channels, scale, length) and
yields it in chunks, so the encoder sees bounded pieces of arbitrarily long
files: numpy arrays, any SpikeInterface recording, or an NWB
``ElectricalSeries`` (pynwb, the ``[nwb]`` extra). Decoded streams can be
written to NWB: the decoded series plus the events as per-channel spike
times in the Units table. AER SPIKE words of the gateware turn into
external detections with :func:`aer_detections`.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable, Iterator

import numpy as np

from .decoder import Decoded
from .encoder import Encoder
from .format import CodecParams

__all__ = ["Source", "load_npy", "load_positions", "numpy_source", "recording_source", "nwb_source", "encode_source",
           "aer_detections", "write_nwb", "DEFAULT_CHUNK"]

#: Samples per chunk read from a source (1 s at 30 kHz).
DEFAULT_CHUNK = 30000


@dataclass
class Source:
    """A recording to encode.

    Attributes
    ----------
    sample_rate : float
    n_channels : int
    uv_per_code : float
        µV per unit of the chunks' values (1.0 for float µV chunks).
    n_samples : int
    chunks : callable
        ``chunks()`` yields ``(n, n_channels)`` arrays (int16 codes or float µV) in order.
    positions_um : numpy.ndarray or None
        ``(n_channels, 2)`` electrode positions in µm, if the source knows them.
    """
    sample_rate: float
    n_channels: int
    uv_per_code: float
    n_samples: int
    chunks: Callable[[], Iterator[np.ndarray]]
    positions_um: np.ndarray | None = None


def load_npy(path, what: str = "input", shape: str = "(n_samples, n_channels)", ndim: int = 2,
             kinds: str = "iuf") -> np.ndarray:
    """Memory-map a ``.npy`` file after checking its header against what is expected; never unpickles.

    Parameters
    ----------
    path : str or os.PathLike
    what : str
        How messages name the file (``"INPUT"``, ``"--aer"``).
    shape : str
        The expected shape, in words, for messages.
    ndim : int
        The expected number of dimensions.
    kinds : str
        Accepted ``dtype.kind`` letters (``"iuf"``: integers and floats).

    Raises
    ------
    ValueError
        Saying what the file is (not a .npy file, empty, truncated, Python
        objects, the wrong shape or type) and what was expected.
    """
    path = Path(path)
    size = path.stat().st_size
    expected = f"expected a {shape} numeric array written by numpy.save"
    with open(path, "rb") as f:
        head = f.read(8)
        f.seek(0)
        try:
            version = np.lib.format.read_magic(f)
        except (ValueError, EOFError):
            found = "an empty file" if size == 0 else f"{size} bytes starting {head!r}, no .npy signature"
            raise ValueError(f"{what} {path} is not a .npy file ({found}); {expected}") from None
        try:
            if version == (1, 0):
                arr_shape, _, dtype = np.lib.format.read_array_header_1_0(f, max_header_size=1 << 16)
            else:
                arr_shape, _, dtype = np.lib.format.read_array_header_2_0(f, max_header_size=1 << 16)
        except (ValueError, EOFError, SyntaxError) as exc:
            raise ValueError(f"{what} {path} has a damaged .npy header ({exc}); {expected}") from None
        offset = f.tell()
    if dtype.hasobject:
        raise ValueError(f"{what} {path} holds Python objects (dtype {dtype}), which bioloop does not load; "
                         f"{expected}")
    if dtype.kind not in kinds or dtype.fields is not None:
        raise ValueError(f"{what} {path} holds {dtype} values; {expected}")
    if len(arr_shape) != ndim:
        raise ValueError(f"{what} {path} has shape {arr_shape}; {expected}")
    need = offset + int(np.prod(arr_shape, dtype=np.int64)) * dtype.itemsize
    if size < need:
        raise ValueError(f"{what} {path} is truncated: its header promises {dtype} {arr_shape} ({need} bytes), "
                         f"the file has {size} bytes")
    if 0 in arr_shape:
        return np.zeros(arr_shape, dtype)
    return np.load(path, mmap_mode="r", allow_pickle=False)


def load_positions(path, n_channels: int) -> np.ndarray:
    """Channel positions in µm, float64 ``(n_channels, 2)``, from a file.

    - ``.npy``: an ``(n_channels, 2)`` array of (x, y) in µm, one row per
      channel of the recording.
    - ``.json``: a probeinterface file (the ``"probes"`` list of
      probeinterface's documented format, read here without probeinterface):
      every probe's ``contact_positions`` (x, y; ``si_units`` "um" or "mm"),
      placed on the recording's channels by ``device_channel_indices`` when
      the file wires every contact, else in contact order.

    Raises
    ------
    ValueError
        The file cannot be read as positions of ``n_channels`` channels; the
        message names the file and what was expected.
    """
    import json
    path = Path(path)
    want = f"expected ({n_channels}, 2) channel positions in µm"
    if path.suffix == ".npy":
        pos = np.asarray(load_npy(path, "--positions", f"({n_channels}, 2) float µm", kinds="iuf"), np.float64)
    elif path.suffix == ".json":
        try:
            probes = json.loads(path.read_text())["probes"]
            xy, wiring = [], []
            for pr in probes:
                scale = {"um": 1.0, "mm": 1000.0}[pr.get("si_units", "um")]
                c = np.asarray(pr["contact_positions"], np.float64)[:, :2] * scale
                xy.append(c)
                wiring.append(np.asarray(pr.get("device_channel_indices") or [-1] * len(c), np.int64))
        except (OSError, ValueError, KeyError, TypeError, IndexError) as exc:
            raise ValueError(f"--positions {path} is not a probeinterface JSON file with contact_positions "
                             f"({type(exc).__name__}: {exc}); {want}") from None
        xy, wiring = np.concatenate(xy), np.concatenate(wiring)
        if len(xy) != n_channels:
            raise ValueError(f"--positions {path} has {len(xy)} contacts, the recording {n_channels} channels")
        if (wiring >= 0).all():
            if sorted(wiring.tolist()) != list(range(n_channels)):
                raise ValueError(f"--positions {path}: device_channel_indices must wire each of the "
                                 f"{n_channels} channels once")
            pos = np.empty_like(xy)
            pos[wiring] = xy
        else:
            pos = xy
    else:
        raise ValueError(f"--positions {path}: use a .npy (n_channels, 2) array or a probeinterface .json file")
    if pos.shape != (n_channels, 2) or not np.isfinite(pos).all():
        raise ValueError(f"--positions {path} holds {pos.shape} values{'' if np.isfinite(pos).all() else ' with NaN/inf'}; "
                         f"{want}")
    return pos


def numpy_source(samples: np.ndarray, sample_rate: float, uv_per_code: float = 1.0,
                 chunk: int = DEFAULT_CHUNK, positions_um=None) -> Source:
    """A numpy ``(n_samples, n_channels)`` array (int16 codes or float µV); ``.npy`` memmaps work too."""
    if samples.ndim != 2:
        raise ValueError(f"samples must be (n_samples, n_channels), not shape {samples.shape}")

    def chunks():
        for i in range(0, samples.shape[0], chunk):
            yield np.ascontiguousarray(samples[i:i + chunk])
    return Source(float(sample_rate), samples.shape[1], uv_per_code, samples.shape[0], chunks, positions_um)


def recording_source(recording, segment_index: int = 0, chunk: int = DEFAULT_CHUNK) -> Source:
    """Any SpikeInterface ``BaseRecording``, read in µV (``return_in_uV=True``), with its channel locations."""
    n = recording.get_num_samples(segment_index=segment_index)
    try:
        pos = np.asarray(recording.get_channel_locations(), np.float64)[:, :2]
    except Exception:   # a recording without a probe has no locations; the spatial rule is then off
        pos = None

    def chunks():
        for i in range(0, n, chunk):
            yield recording.get_traces(segment_index=segment_index, start_frame=i,
                                       end_frame=min(i + chunk, n), return_in_uV=True)
    return Source(float(recording.get_sampling_frequency()), recording.get_num_channels(), 1.0, n, chunks, pos)


def _pynwb():
    try:
        import pynwb
    except ImportError as e:
        raise ImportError("NWB input/output needs pynwb: pip install 'bioloop[nwb]'") from e
    return pynwb


def nwb_source(path, series: str | None = None, chunk: int = DEFAULT_CHUNK) -> Source:
    """An ``ElectricalSeries`` in an NWB file (the only one, or the one named ``series``).

    int16 data without offset is passed on as codes with
    ``uv_per_code = conversion * 1e6``; anything else as float µV.
    """
    pynwb = _pynwb()
    with pynwb.NWBHDF5IO(str(path), "r") as io:
        es = _find_series(io.read(), series, pynwb)
        shape, dtype = es.data.shape, es.data.dtype
        conv, off = float(es.conversion), float(getattr(es, "offset", 0.0) or 0.0)
        if es.rate is None:
            raise ValueError(f"ElectricalSeries {es.name} has timestamps, not a rate; the codec needs a regular rate")
        rate = float(es.rate)
        name = es.name
        pos = _electrode_positions(es)
    if len(shape) != 2:
        raise ValueError(f"ElectricalSeries {name} has shape {shape}; need (n_samples, n_channels)")
    as_codes = dtype == np.int16 and off == 0.0

    def chunks():
        with pynwb.NWBHDF5IO(str(path), "r") as io:
            d = _find_series(io.read(), name, pynwb).data
            for i in range(0, shape[0], chunk):
                x = np.asarray(d[i:i + chunk])
                yield x if as_codes else ((x.astype(np.float64) * conv + off) * 1e6).astype(np.float32)
    return Source(rate, shape[1], conv * 1e6 if as_codes else 1.0, shape[0], chunks, pos)


def _electrode_positions(es):
    """Probe-relative (rel_x, rel_y) of the series' electrodes in µm, if the table has them, else None.

    NWB's ``x``, ``y``, ``z`` are brain coordinates; ``rel_x``, ``rel_y`` are
    the positions on the probe, which is what SpikeInterface reads as channel
    locations and what the spatial rule needs.
    """
    try:
        df = es.electrodes.to_dataframe()
        xy = df[["rel_x", "rel_y"]].to_numpy(dtype=np.float64)
    except (KeyError, AttributeError, ValueError):
        return None
    return xy if np.all(np.isfinite(xy)) else None


def _find_series(nwbfile, name, pynwb):
    found = {k: v for k, v in nwbfile.acquisition.items() if isinstance(v, pynwb.ecephys.ElectricalSeries)}
    if name is not None:
        if name not in found:
            raise ValueError(f"no ElectricalSeries named {name!r} in acquisition; found {sorted(found)}")
        return found[name]
    if len(found) != 1:
        raise ValueError(f"need exactly one ElectricalSeries in acquisition or a name; found {sorted(found)}")
    return next(iter(found.values()))


def encode_source(source: Source, params: CodecParams | None = None, out=None, progress=None,
                  detections=None) -> tuple[bytes | None, "Encoder"]:
    """Encode a source chunk by chunk.

    Parameters
    ----------
    out : file-like, optional
        Bytes are written there as they are produced (bounded memory); if
        omitted they are returned.
    progress : callable, optional
        Called with the number of samples of each chunk done.
    detections : tuple, optional
        External detections ``(times, channels)`` for the whole source.
    """
    enc = Encoder(source.n_channels, source.sample_rate, params, uv_per_code=source.uv_per_code,
                  external=detections is not None, positions_um=source.positions_um)
    parts = []
    write = out.write if out is not None else parts.append
    done = 0
    if detections is not None:
        times, chans = (np.asarray(a, np.int64) for a in detections)
        order = np.argsort(times, kind="stable")
        times, chans = times[order], chans[order]
    for x in source.chunks():
        det = None
        if detections is not None:
            a, b = np.searchsorted(times, [done, done + x.shape[0]])
            det = (times[a:b], chans[a:b])
        write(enc.push(x, det))
        done += x.shape[0]
        if progress is not None:
            progress(x.shape[0])
    write(enc.finish())
    return (None if out is not None else b"".join(parts)), enc


def aer_detections(words: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """External detections from gateware AER words: SPIKE words only, (timestamp, address).

    Timestamps count frames (DESIGN.md §3), so they are sample indices of the
    samples the host streamed to the board.
    """
    from bioloop.host.aer import AERType, unpack
    f = unpack(np.asarray(words, dtype=np.uint64))
    spike = f.type == AERType.SPIKE.value
    return f.timestamp[spike].astype(np.int64), f.address[spike].astype(np.int64)


def write_nwb(path, decoded: Decoded, description: str = "bioloop codec decode") -> None:
    """Write a decoded stream to NWB: ``ElectricalSeries`` "decoded" and one Units row per channel.

    Each unit holds the event times (seconds) of one channel: threshold
    crossings, multi-unit activity, not sorted units.
    """
    pynwb = _pynwb()
    from pynwb.ecephys import ElectricalSeries
    h = decoded.header
    # A fixed start time keeps the file content a function of the stream alone.
    f = pynwb.NWBFile(session_description=description, identifier="bioloop-codec",
                      session_start_time=datetime(1970, 1, 1, tzinfo=timezone.utc))
    dev = f.create_device(name="bioloop")
    grp = f.create_electrode_group(name="array", description="recording channels", location="unknown",
                                   device=dev)
    for c in range(h.n_channels):
        if h.positions_um is not None:   # probe-relative positions, as SpikeInterface reads them
            f.add_electrode(group=grp, location="unknown", rel_x=float(h.positions_um[c, 0]),
                            rel_y=float(h.positions_um[c, 1]), rel_z=0.0)
        else:
            f.add_electrode(group=grp, location="unknown")
    region = f.create_electrode_table_region(list(range(h.n_channels)), "all channels")
    f.add_acquisition(ElectricalSeries(name="decoded", data=decoded.samples_uv, electrodes=region,
                                       rate=h.sample_rate, conversion=1e-6,
                                       description="codec reconstruction in µV (conversion to volts 1e-6)"))
    f.add_unit_column(name="channel", description="recording channel of the events")
    ev = decoded.events
    for c in range(h.n_channels):
        t = np.sort(ev.times[ev.channels == c]) / h.sample_rate
        f.add_unit(spike_times=t, electrodes=[c], channel=c)
    from bioloop.host.output_files import replacing
    with replacing(path, overwrite=True, what="NWB output") as tmp, pynwb.NWBHDF5IO(str(tmp), "w") as io:
        io.write(f)
