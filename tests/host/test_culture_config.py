"""Culture configuration: fluent API, JSON round-trip, rejection by name, receipts."""

import json

import pytest

from bioloop.host.culture import (ConfigError, Culture, CultureConfig, NetworkConfig,
                                  RunReceipt)


def test_default_round_trip_is_identity():
    cfg = CultureConfig()
    back = CultureConfig.from_json(cfg.to_json())
    assert back == cfg
    assert back.digest() == cfg.digest()


def test_fluent_changes_survive_round_trip_and_change_the_hash():
    cfg = (CultureConfig()
           .with_network(n_neurons=200, excitatory_preset="chattering", w_exc=3.5)
           .with_layout(mea="256ch", n_stim_lanes=8)
           .with_field(cutoff_um=250.0)
           .with_noise(white_uv_rms=0.0, pink_uv_rms=7.5)
           .with_optogenetics(tau_on_ms=2.0, tau_off_ms=20.0)
           .with_seed(99).with_sample_rate(25_000.0).with_uv_per_code(0.5))
    back = CultureConfig.from_json(cfg.to_json())
    assert back == cfg
    assert back.network.excitatory_preset == "chattering"
    assert back.n_electrodes == 256 and back.n_stim_lanes == 8
    assert cfg.digest() != CultureConfig().digest()
    # The original is immutable: with_* returned new objects.
    assert CultureConfig().network.n_neurons == 1024


def test_int_given_for_float_hashes_like_the_float():
    assert CultureConfig(sample_rate_hz=20000).digest() == CultureConfig().digest()
    assert CultureConfig().with_noise(white_uv_rms=4).digest() == CultureConfig().digest()


def test_missing_keys_take_defaults():
    assert CultureConfig.from_dict({"seed": 5}) == CultureConfig(seed=5)
    assert CultureConfig.from_dict({"network": {"n_neurons": 10}}).network == \
        NetworkConfig(n_neurons=10)


@pytest.mark.parametrize("doc, name", [
    ({"seeds": 1}, "seeds"),
    ({"network": {"n_neuron": 10}}, "network.n_neuron"),
    ({"noise": {"brown_uv_rms": 1.0}}, "noise.brown_uv_rms"),
    ({"optogenetics": {"wavelength_nm": 470}}, "optogenetics.wavelength_nm"),
])
def test_unknown_keys_are_rejected_by_name(doc, name):
    with pytest.raises(ConfigError, match=f"unknown key {name}"):
        CultureConfig.from_dict(doc)


def test_unknown_fluent_key_is_rejected_by_name():
    with pytest.raises(ConfigError, match="unknown key field.amplitude"):
        CultureConfig().with_field(amplitude=3.0)


@pytest.mark.parametrize("section, key, value", [
    ("network", "n_neurons", 0),
    ("network", "n_neurons", 12.5),
    ("network", "n_neurons", True),
    ("network", "excitatory_fraction", 1.5),
    ("network", "excitatory_preset", "bursting_ish"),
    ("network", "connection_probability", -0.1),
    ("network", "tau_exc_ms", 0.0),
    ("network", "depression_u", 0.0),
    ("network", "delay_max_ms", 0.1),          # below delay_min_ms
    ("network", "background_rate_hz", float("nan")),
    ("layout", "mea", "61ch"),
    ("layout", "n_stim_lanes", 61),
    ("field", "min_distance_um", 0.0),
    ("field", "amplitude_median_uv", -1.0),
    ("noise", "white_uv_rms", -0.5),
    ("noise", "pink_uv_rms", float("inf")),
    ("optogenetics", "tau_off_ms", 0.5),       # must exceed tau_on_ms
    ("optogenetics", "max_current", "high"),
])
def test_out_of_range_values_are_rejected_by_name(section, key, value):
    with pytest.raises(ConfigError, match=rf"{section}\.{key}"):
        getattr(CultureConfig(), f"with_{section}")(**{key: value})
    with pytest.raises(ConfigError, match=rf"{section}\.{key}"):
        CultureConfig.from_dict({section: {key: value}})


@pytest.mark.parametrize("key, value", [("seed", -1), ("sample_rate_hz", 1000.0),
                                        ("uv_per_code", 0.0), ("seed", 1.0)])
def test_top_level_values_rejected_by_name(key, value):
    with pytest.raises(ConfigError, match=key):
        CultureConfig.from_dict({key: value})


def test_bad_json_and_schema():
    with pytest.raises(ConfigError, match="not valid JSON"):
        CultureConfig.from_json("{nope")
    with pytest.raises(ConfigError, match="schema 2"):
        CultureConfig.from_dict({"schema": 2})
    with pytest.raises(TypeError, match="CultureConfig"):
        Culture({"seed": 1})


# --- receipts ------------------------------------------------------------------------

SMALL = CultureConfig().with_network(n_neurons=64, connection_probability=0.2)


def _receipt(cfg, n=4000):
    culture = Culture(cfg)
    culture.step(n)
    return RunReceipt.from_culture(culture)


def test_receipt_id_is_stable_and_content_addressed():
    a, b = _receipt(SMALL), _receipt(SMALL)
    assert a.id == b.id and len(a.id) == 16
    assert a.config_hash == SMALL.digest() and a.seed == SMALL.seed
    assert _receipt(SMALL.with_seed(1)).id != a.id
    assert _receipt(SMALL, n=4001).id != a.id
    doc = json.loads(a.to_json())
    assert doc["id"] == a.id
    assert doc["summary"]["n_spikes"] == sum(doc["summary"]["spikes_per_channel"])


def test_receipt_save_refuses_to_overwrite(tmp_path):
    rec = _receipt(SMALL)
    path = tmp_path / "run.json"
    rec.save(path)
    before = path.read_bytes()
    other = _receipt(SMALL.with_seed(3))
    with pytest.raises(FileExistsError, match="overwrite=True"):
        other.save(path)
    assert path.read_bytes() == before
    assert RunReceipt.load(path) == rec
    other.save(path, overwrite=True)
    assert RunReceipt.load(path).id == other.id
    assert [p.name for p in tmp_path.iterdir()] == ["run.json"]  # no temp files left


def test_receipt_load_detects_edits(tmp_path):
    rec = _receipt(SMALL)
    path = rec.save(tmp_path / "run.json")
    doc = json.loads(path.read_text())
    doc["summary"]["n_spikes"] += 1
    path.write_text(json.dumps(doc))
    with pytest.raises(ValueError, match="was edited"):
        RunReceipt.load(path)
    doc = json.loads(rec.to_json())
    doc["config"]["seed"] = 12345
    path.write_text(json.dumps(doc))
    with pytest.raises(ValueError, match="config_hash"):
        RunReceipt.load(path)
