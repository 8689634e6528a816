"""Sweep files: what a study varies, validated and expanded into runs.

A sweep file is TOML. It names the backend and experiment, the settings
every run shares (``[fixed]``), the settings varied as a cartesian product
(``[grid]``), an optional explicit list of runs (``[[runs]]``) and the
seeds. A setting is named by its dotted path:

``loop.<field>``
    any :class:`~bioloop.host.loop.LoopSettings` field (``loop.window_ms``);
``culture.<section>.<field>`` or ``culture.<field>``
    any :class:`~bioloop.host.culture.CultureConfig` field
    (``culture.network.n_neurons``, ``culture.sample_rate_hz``);
``policy.<parameter>``
    a parameter of the experiment's policy;
``core.n_channels``, ``core.n_lanes``, ``core.fanout``
    the core's elaboration parameters;
``seed``
    the culture seed (``[sweep] seeds = [...]`` is the short form);
``condition``
    ``"on"`` (the experiment's policies, the default) or ``"off"`` (the
    experiment's reference run: no policies, its reference settings), as
    ``bioloop demo`` runs them.

A run's loop settings are the experiment's (``bioloop.host.experiments``:
the homeostasis experiment's tonic stimulation clock, for example) with the
file's ``loop.*`` values on top; ``policy.*`` values set fields of the
experiment's policy (``policy.kp`` of ``RateHomeostasis``).

TOML nesting and quoted dotted keys mean the same thing: ``[grid.loop]
window_ms = [50, 100]`` and ``[grid] "loop.window_ms" = [50, 100]``.

Every run is resolved against the defaults and validated before anything
runs: an unknown key, a grid entry that is not a non-empty list, or a value
that :class:`LoopSettings` or :class:`CultureConfig` refuses is a
:class:`SweepError` naming the key. A run's id is the SHA-256 of the
canonical JSON of its resolved settings (and the bioloop version), so the
same sweep file always names the same run directories.
"""

from __future__ import annotations

import dataclasses
import hashlib
import itertools
import json
import math
import sys
from dataclasses import dataclass
from pathlib import Path

if sys.version_info >= (3, 11):
    import tomllib
else:                                      # pragma: no cover - Python 3.10 (the board's)
    import tomli as tomllib

__all__ = ["SweepError", "Run", "Sweep", "load_sweep", "parse_sweep", "SCHEMA", "BACKENDS"]

#: Backends a sweep can run on: the Core model, or the compiled Verilator RTL in the worker's
#: process. Not the cocotb backend (a simulator process per run, 20x slower; use it for
#: waveforms) and not the board (one board runs one experiment at a time).
BACKENDS = ("model", "verilator")
#: Version of the run-settings layout hashed into every run id.
RUN_SCHEMA = 1
#: Most runs a sweep file may expand to (a typo in a grid should not start a million runs).
MAX_RUNS = 100_000

#: JSON schema of a sweep file (after TOML parsing), published in docs/sweep.md.
SCHEMA = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "title": "bioloop sweep file",
    "type": "object",
    "additionalProperties": False,
    "required": ["sweep"],
    "properties": {
        "sweep": {
            "type": "object",
            "additionalProperties": False,
            "properties": {
                "name": {"type": "string"},
                "backend": {"enum": list(BACKENDS)},
                "experiment": {"type": "string", "minLength": 1},
                "seeds": {"type": "array", "minItems": 1,
                          "items": {"type": "integer", "minimum": 0, "maximum": 2**63 - 1}},
            },
        },
        "fixed": {"$ref": "#/$defs/settings"},
        "grid": {"$ref": "#/$defs/settings"},
        "runs": {"type": "array", "minItems": 1, "items": {"$ref": "#/$defs/settings"}},
    },
    "$defs": {
        "settings": {
            "type": "object",
            "description": "dotted setting paths (loop.*, culture.*, policy.*, core.*, seed, condition), "
                           "as quoted keys or nested tables",
            "propertyNames": {"pattern": "^((loop|culture|policy|core)\\..+|seed|condition)$"},
        },
    },
}


class SweepError(ValueError):
    """A sweep file is invalid; the message names the file and the key."""


def _loop_fields() -> dict:
    from bioloop.host.loop import LoopSettings
    return {f.name: f for f in dataclasses.fields(LoopSettings)}


CORE_DEFAULTS = {"n_channels": 64, "n_lanes": 64, "fanout": 16}


@dataclass(frozen=True)
class Run:
    """One run of a sweep, fully resolved.

    Members
    -------
    index : int
        Position in the plan (the table's row order).
    backend, experiment : str
    condition : str
        ``"on"`` or ``"off"`` (the experiment's reference).
    seed : int
    loop : dict
        Every :class:`LoopSettings` field, resolved (experiment, then the file).
    culture : dict
        The culture overrides (dotted ``section.field`` keys) applied to the
        default :class:`CultureConfig`.
    policy : dict
        Policy parameters.
    core : dict
        ``n_channels``, ``n_lanes``, ``fanout``.
    varied : dict
        The dotted keys this run varies, with their values (for tables).
    """

    index: int
    backend: str
    experiment: str
    condition: str
    seed: int
    loop: dict
    culture: dict
    policy: dict
    core: dict
    varied: dict

    def settings(self) -> dict:
        """Everything that determines the run's output, JSON-safe and canonical."""
        from bioloop.host.culture.receipt import package_version
        return {"schema": RUN_SCHEMA, "version": package_version(), "backend": self.backend,
                "experiment": self.experiment, "condition": self.condition, "seed": self.seed,
                "loop": self.loop,
                "culture": self.culture_config().to_dict(), "policy": self.policy, "core": self.core}

    @property
    def run_id(self) -> str:
        """First 16 hex digits of SHA-256 of :meth:`settings` as canonical JSON."""
        canon = json.dumps(self.settings(), sort_keys=True, separators=(",", ":"), allow_nan=False)
        return hashlib.sha256(canon.encode()).hexdigest()[:16]

    def culture_config(self):
        """The :class:`CultureConfig` of this run (overrides on the defaults, then the seed)."""
        from bioloop.host.culture import CultureConfig
        d = CultureConfig().to_dict()
        for key, value in self.culture.items():
            head, _, tail = key.partition(".")
            if tail:
                d.setdefault(head, {})
                if not isinstance(d[head], dict):
                    raise SweepError(f"culture.{key}: culture.{head} is not a section")
                d[head][tail] = value
            else:
                d[head] = value
        d["seed"] = self.seed
        return CultureConfig.from_dict(d)

    def loop_settings(self):
        """The :class:`LoopSettings` of this run."""
        from bioloop.host.loop import LoopSettings
        return LoopSettings(**self.loop)

    def policies(self) -> list:
        """Fresh policy objects: the experiment's with ``policy.*`` applied (none when off)."""
        return _policies(self.experiment, self.condition, self.policy)


def _policies(experiment: str, condition: str, params: dict) -> list:
    from bioloop.host.experiments import experiment as get_experiment
    if condition == "off":
        return []
    policies = get_experiment(experiment).policies()
    if not params:
        return policies
    first = policies[0]
    names = {f.name for f in dataclasses.fields(first) if f.init and f.name != "name"} \
        if dataclasses.is_dataclass(first) else set()
    unknown = sorted(set(params) - names)
    if unknown:
        raise ValueError(f"policy.{unknown[0]} is not a parameter of the {experiment} experiment's "
                         f"policy {type(first).__name__}; its parameters: {', '.join(sorted(names)) or 'none'}")
    return [dataclasses.replace(first, **params), *policies[1:]]


@dataclass(frozen=True)
class Sweep:
    """A parsed sweep file: its name and its runs, in plan order."""

    name: str
    source: str
    runs: tuple

    def table_columns(self) -> list[str]:
        """The varied keys, in the order they appear in the file."""
        seen = {}
        for run in self.runs:
            for key in run.varied:
                seen.setdefault(key, None)
        return list(seen)


def _flatten(table, prefix: str, where: str) -> dict:
    """{"loop": {"a": 1}, "culture.network": {"b": 2}} -> {"loop.a": 1, "culture.network.b": 2}."""
    out = {}
    for key, value in table.items():
        path = f"{prefix}.{key}" if prefix else str(key)
        if isinstance(value, dict):
            out.update(_flatten(value, path, where))
        else:
            if path in out:
                raise SweepError(f"{where}: {path} is given twice")
            out[path] = value
    return out


def _split(path: str, where: str) -> tuple[str, str]:
    root, _, rest = path.partition(".")
    if root == "seed" and not rest:
        return "seed", ""
    if root not in ("loop", "culture", "policy", "core") or not rest:
        raise SweepError(f"{where}: unknown setting {path!r}; settings are loop.<field>, "
                         "culture.<section>.<field>, policy.<name>, core.<n_channels|n_lanes|fanout> "
                         "or seed")
    return root, rest


def _check_value(path: str, value, where: str) -> None:
    if isinstance(value, float) and not math.isfinite(value):
        raise SweepError(f"{where}: {path} = {value!r} is not finite")
    if not isinstance(value, (bool, int, float, str)):
        raise SweepError(f"{where}: {path} must be a number, boolean or string, not {value!r}")


def _resolve(index: int, base: dict, varied: dict, backend: str, experiment: str,
             where: str) -> Run:
    settings = {**base, **varied}
    loop, culture, policy, core = {}, {}, {}, dict(CORE_DEFAULTS)
    seed = settings.pop("seed", 1)
    if isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed <= 2**63 - 1:
        raise SweepError(f"{where}: seed must be an integer in 0..2**63-1, not {seed!r}")
    condition = settings.pop("condition", "on")
    if condition not in ("on", "off"):
        raise SweepError(f"{where}: condition must be \"on\" or \"off\", not {condition!r}")
    fields = _loop_fields()
    for path, value in settings.items():
        root, rest = _split(path, where)
        _check_value(path, value, where)
        if root == "loop":
            if rest not in fields:
                raise SweepError(f"{where}: unknown setting {path}; LoopSettings fields: "
                                 f"{', '.join(sorted(fields))}")
            loop[rest] = value
        elif root == "culture":
            if rest == "seed":
                raise SweepError(f"{where}: set the culture seed with seed or [sweep] seeds, "
                                 "not culture.seed")
            culture[rest] = value
        elif root == "policy":
            policy[rest] = value
        elif root == "core":
            if rest not in CORE_DEFAULTS:
                raise SweepError(f"{where}: unknown setting {path}; core settings: "
                                 f"{', '.join(CORE_DEFAULTS)}")
            if isinstance(value, bool) or not isinstance(value, int):
                raise SweepError(f"{where}: {path} must be an integer, not {value!r}")
            core[rest] = value
    from bioloop.host.experiments import experiment as get_experiment
    from bioloop.host.loop import LoopSettings
    try:
        exp = get_experiment(experiment)
        on = dataclasses.replace(exp.settings(LoopSettings()), **loop)
        resolved = on if condition == "on" else exp.reference(on)
        _policies(experiment, condition, policy)
    except (TypeError, ValueError) as exc:
        raise SweepError(f"{where}: run {index} ({_describe(varied)}): {exc}") from None
    shown = {"seed": seed, **varied} if "seed" not in varied else dict(varied)
    run = Run(index, backend, experiment, condition, seed, dataclasses.asdict(resolved),
              dict(sorted(culture.items())), dict(sorted(policy.items())), core, shown)
    try:
        resolved.check_registers(run.culture_config().sample_rate_hz)
    except ValueError as exc:
        raise SweepError(f"{where}: run {index} ({_describe(varied)}): {exc}") from None
    return run


def _describe(varied: dict) -> str:
    return ", ".join(f"{k}={v!r}" for k, v in varied.items()) or "fixed settings"


def parse_sweep(doc: dict, where: str = "<sweep>") -> Sweep:
    """Validate a parsed sweep document and expand it into runs.

    Raises
    ------
    SweepError
        Naming ``where`` and the offending key.
    """
    try:
        import jsonschema
    except ImportError:                    # pragma: no cover - the sweep extra installs it
        raise SweepError("validating sweep files needs jsonschema: pip install 'bioloop[sweep]'")
    flat_doc = dict(doc)
    for section in ("fixed", "grid"):
        if isinstance(flat_doc.get(section), dict):
            flat_doc[section] = _flatten(flat_doc[section], "", f"{where} [{section}]")
    if isinstance(flat_doc.get("runs"), list):
        flat_doc["runs"] = [_flatten(r, "", f"{where} [[runs]] #{i}") if isinstance(r, dict) else r
                            for i, r in enumerate(flat_doc["runs"])]
    errors = sorted(jsonschema.Draft202012Validator(SCHEMA).iter_errors(flat_doc),
                    key=lambda e: list(e.absolute_path))
    if errors:
        e = errors[0]
        at = "/".join(str(p) for p in e.absolute_path) or "top level"
        raise SweepError(f"{where}: {at}: {e.message}")
    head = flat_doc["sweep"]
    backend = head.get("backend", "model")
    experiment = head.get("experiment", "homeostasis")
    fixed = flat_doc.get("fixed", {})
    grid = flat_doc.get("grid", {})
    explicit = flat_doc.get("runs", [{}])
    for key, values in grid.items():
        if not isinstance(values, list) or not values:
            raise SweepError(f"{where} [grid]: {key} must be a non-empty list of values, not {values!r}")
        if len(set(map(repr, values))) != len(values):
            raise SweepError(f"{where} [grid]: {key} repeats a value: {values!r}")
    if "seeds" in head:
        if "seed" in grid or "seed" in fixed:
            raise SweepError(f"{where}: give the seeds once, in [sweep] seeds or as seed, not both")
        grid = {**grid, "seed": head["seeds"]}
    keys = list(grid)
    n = math.prod(len(v) for v in grid.values()) * len(explicit)
    if n > MAX_RUNS:
        raise SweepError(f"{where}: the sweep expands to {n} runs, more than {MAX_RUNS}")
    runs = []
    for extra in explicit:
        for combo in itertools.product(*(grid[k] for k in keys)):
            varied = {**extra, **dict(zip(keys, combo, strict=True))}
            runs.append(_resolve(len(runs), fixed, varied, backend, experiment, where))
    ids = [r.run_id for r in runs]
    if len(set(ids)) != len(ids):
        dup = next(i for i in ids if ids.count(i) > 1)
        raise SweepError(f"{where}: two runs resolve to the same settings (run id {dup})")
    return Sweep(head.get("name", Path(where).stem), where, tuple(runs))


def load_sweep(path) -> Sweep:
    """Read, validate and expand a TOML sweep file."""
    path = Path(path)
    try:
        text = path.read_bytes()
    except OSError as exc:
        raise SweepError(f"cannot read sweep file {path}: {exc.strerror or exc}") from None
    try:
        doc = tomllib.loads(text.decode("utf-8"))
    except (UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise SweepError(f"{path} is not a valid TOML sweep file: {exc}") from None
    return parse_sweep(doc, str(path))
