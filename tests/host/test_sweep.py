"""bioloop sweep: sweep files, runs on Dask (embedded and a real scheduler), tables, resumption."""

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("dask.distributed", reason="bioloop sweep needs the sweep extra (dask[distributed])")
# One worker runs the module, so the module fixture `embedded` (a 2-worker LocalCluster sweep) runs once.
pytestmark = pytest.mark.xdist_group("sweep_embedded")
import pandas as pd  # noqa: E402

from bioloop.host.sweep import SweepError, load_sweep, parse_sweep  # noqa: E402
from bioloop.host.sweep.execute import run_sweep  # noqa: E402
from bioloop.host.sweep.plan import SCHEMA  # noqa: E402
from bioloop.host.sweep.rundir import RunDirError, run_dir, verify_run_dir  # noqa: E402
from bioloop.host.sweep.table import gather, report, write_tables  # noqa: E402

REPO = Path(__file__).resolve().parents[2]

# Small and fast: a 96-neuron culture, 0.3 s of loop after 50 ms of calibration.
SMALL = """
[sweep]
name = "small"
backend = "model"
seeds = [1, 2]

[fixed.loop]
duration_s = 0.3
calibration_ms = 50.0
theta0_q88 = 256

[fixed.culture.network]
n_neurons = 96

[grid.loop]
window_ms = [25.0, 50.0]
"""


def sweep_file(tmp_path, text=SMALL, name="s.toml"):
    p = tmp_path / name
    p.write_text(text)
    return p


# --- the plan ---------------------------------------------------------------------

def test_experiment_condition_and_policy_parameters(tmp_path):
    from bioloop.host.experiments import experiment
    from bioloop.host.loop import LoopSettings
    text = SMALL.replace("[grid.loop]\nwindow_ms = [25.0, 50.0]",
                         "[fixed.policy]\nkp = 0.25\n\n[grid]\ncondition = [\"on\", \"off\"]")
    sweep = load_sweep(sweep_file(tmp_path, text))
    on, off = sweep.runs[0], sweep.runs[2]
    assert (on.condition, off.condition, on.seed, off.seed) == ("on", "off", 1, 1)
    exp = experiment("homeostasis")
    expect_on = exp.settings(LoopSettings())
    assert on.loop["clock_hz"] == expect_on.clock_hz and on.loop["lane_code"] == expect_on.lane_code
    assert on.loop["duration_s"] == 0.3 and off.loop["duration_s"] == 0.3
    [policy] = on.policies()
    assert type(policy) is type(exp.policies()[0]) and policy.kp == 0.25
    assert off.policies() == []
    assert on.run_id != off.run_id


def test_plan_expands_grid_times_seeds_in_file_order(tmp_path):
    sweep = load_sweep(sweep_file(tmp_path))
    assert [(r.loop["window_ms"], r.seed) for r in sweep.runs] == [
        (25.0, 1), (25.0, 2), (50.0, 1), (50.0, 2)]
    assert [r.index for r in sweep.runs] == [0, 1, 2, 3]
    assert all(r.loop["duration_s"] == 0.3 and r.culture == {"network.n_neurons": 96} for r in sweep.runs)
    assert sweep.runs[0].culture_config().network.n_neurons == 96
    assert sweep.runs[1].culture_config().seed == 2
    assert sweep.table_columns() == ["loop.window_ms", "seed"]        # grid keys in file order, seeds last


def test_run_ids_are_deterministic_unique_and_independent_of_spelling(tmp_path):
    a = load_sweep(sweep_file(tmp_path))
    b = load_sweep(sweep_file(tmp_path))
    assert [r.run_id for r in a.runs] == [r.run_id for r in b.runs]
    assert len({r.run_id for r in a.runs}) == 4
    quoted = SMALL.replace('[fixed.culture.network]\nn_neurons = 96', '[fixed]\n"culture.network.n_neurons" = 96')
    c = parse_sweep(__import__("tomllib").loads(quoted), "quoted")
    assert [r.run_id for r in c.runs] == [r.run_id for r in a.runs]
    # a default written out explicitly is the same run
    explicit = SMALL.replace("theta0_q88 = 256", "theta0_q88 = 256\nblock_ms = 5.0")
    d = load_sweep(sweep_file(tmp_path, explicit, "d.toml"))
    assert [r.run_id for r in d.runs] == [r.run_id for r in a.runs]


@pytest.mark.parametrize("text, message", [
    ("[sweep]\n[grid]\n\"loop.no_such\" = [1]\n", "unknown setting loop.no_such"),
    ("[sweep]\n[grid]\n\"bogus.x\" = [1]\n", r"(unknown setting|does not match)"),
    ("[sweep]\n[grid]\n\"loop.window_ms\" = 5.0\n", "must be a non-empty list"),
    ("[sweep]\n[grid]\n\"loop.window_ms\" = []\n", "must be a non-empty list"),
    ("[sweep]\n[grid]\n\"loop.window_ms\" = [5.0, 5.0]\n", "repeats a value"),
    ("[sweep]\n[fixed]\n\"loop.window_ms\" = -1.0\n", "window_ms must be a finite number > 0"),
    ("[sweep]\n[fixed]\n\"culture.network.n_neurons\" = 0\n", "network.n_neurons"),
    ("[sweep]\n[fixed]\n\"culture.network.nope\" = 1\n", "unknown key network.nope"),
    ("[sweep]\nseeds = [1]\n[grid]\nseed = [2, 3]\n", "give the seeds once"),
    ("[sweep]\nseeds = [-1]\n", "seeds"),
    ("[sweep]\nbackend = \"fpga\"\n", "backend"),
    ("[sweep]\nbackend = \"cocotb\"\n", "backend"),
    ("[sweep]\nexperiment = \"dance\"\n", "unknown experiment 'dance'"),
    ("[sweep]\n[grid]\ncondition = [\"on\", \"maybe\"]\n", "condition must be"),
    ("[sweep]\n[fixed]\n\"policy.nope\" = 1.0\n", "policy.nope is not a parameter of the homeostasis"),
    ("[sweep]\nextra = 1\n", "Additional properties"),
    ("[swep]\n", "sweep"),
    ("[sweep]\n[fixed]\n\"core.n_channels\" = 1.5\n", "core.n_channels must be an integer"),
    ("[sweep]\n[grid]\n\"loop.window_ms\" = " + str(list(range(1, 400))) + "\n"
     "\"loop.tau_homeo_ms\" = " + str(list(range(1, 400))) + "\n", "more than"),
])
def test_bad_sweep_files_name_the_problem(tmp_path, text, message):
    with pytest.raises(SweepError, match=message):
        load_sweep(sweep_file(tmp_path, text))


def test_unreadable_and_invalid_toml(tmp_path):
    with pytest.raises(SweepError, match="cannot read sweep file"):
        load_sweep(tmp_path / "missing.toml")
    with pytest.raises(SweepError, match="not a valid TOML"):
        load_sweep(sweep_file(tmp_path, "[sweep\n"))


def test_the_schema_in_the_docs_is_the_schema_that_validates():
    text = (REPO / "docs" / "sweep.md").read_text()
    block = re.search(r"```json\n(.*?)\n```", text, re.S).group(1)
    assert json.loads(block) == SCHEMA


# --- runs on an embedded cluster -----------------------------------------------------

@pytest.fixture(scope="module")
def embedded(tmp_path_factory):
    """The small sweep run once on a 2-worker LocalCluster."""
    tmp = tmp_path_factory.mktemp("sweep")
    sweep = load_sweep(sweep_file(tmp))
    out = tmp / "out"
    outcome = run_sweep(sweep, out, workers=2)
    write_tables(sweep, out)
    return sweep, out, outcome


def test_every_run_writes_a_verified_directory(embedded):
    sweep, out, outcome = embedded
    assert sorted(outcome.done) == sorted(r.run_id for r in sweep.runs)
    assert not outcome.failed and not outcome.skipped
    for run in sweep.runs:
        receipt = verify_run_dir(run_dir(out, run), run)
        assert receipt["run_id"] == run.run_id
        words = np.load(run_dir(out, run) / "aer.npy")
        assert words.dtype == np.uint64 and words.size > 0
    assert not list((out / "runs").glob(".*"))


def test_a_run_equals_the_same_loop_run_directly(embedded):
    """The sweep adds nothing to a run: its AER log is the loop's, run here in-process."""
    from bioloop.host.backends import ModelBus
    from bioloop.host.culture import Culture
    from bioloop.host.driver import Driver
    from bioloop.host.loop import run_loop
    sweep, out, _ = embedded
    run = sweep.runs[3]
    bus = ModelBus(**run.core)
    result = run_loop(Driver(bus), Culture(run.culture_config()), run.loop_settings(), policies=run.policies())
    assert np.array_equal(np.load(run_dir(out, run) / "aer.npy"), result.words)
    table, _ = gather(sweep, out)
    assert table.loc[3, "abs_rate_error_hz"] == pytest.approx(
        abs(result.controlled_rate() - run.loop["target_rate_hz"]))


def test_table_has_every_setting_and_figure_in_plan_order(embedded):
    sweep, out, _ = embedded
    table = pd.read_parquet(out / "results.parquet")
    csv = pd.read_csv(out / "results.csv")
    assert list(table["index"]) == [0, 1, 2, 3] and list(csv["index"]) == [0, 1, 2, 3]
    assert list(table["run_id"]) == [r.run_id for r in sweep.runs]
    assert (table["status"] == "done").all()
    for col in ("seed", "loop.window_ms", "loop.tau_homeo_ms", "culture.network.n_neurons", "core.n_lanes",
                "abs_rate_error_hz", "bursts_per_min", "theta_last_q88", "theta_slope_last_third_q88_per_s",
                "latency_probe_p99_cycles", "window_rate_std_hz"):
        assert col in table, col
    assert list(table["loop.window_ms"]) == [25.0, 25.0, 50.0, 50.0]
    timing = pd.read_csv(out / "timing.csv")
    assert set(timing["run_id"]) == set(table["run_id"]) and (timing["wall_s"] > 0).all()


def test_rerun_skips_complete_runs_and_redoes_a_damaged_one(embedded, tmp_path):
    sweep, out, _ = embedded
    copy = tmp_path / "copy"
    shutil.copytree(out, copy)
    before = (copy / "results.csv").read_bytes()
    damaged = run_dir(copy, sweep.runs[1])
    (damaged / "summary.json").write_text("{}")
    with pytest.raises(RunDirError, match="summary.json does not match"):
        verify_run_dir(damaged)
    outcome = run_sweep(sweep, copy, workers=1)
    assert outcome.done == [sweep.runs[1].run_id]
    assert len(outcome.skipped) == 3
    write_tables(sweep, copy)
    assert (copy / "results.csv").read_bytes() == before


def test_a_failing_run_is_recorded_and_the_others_go_on(tmp_path):
    # a 16-channel core cannot host the 60-electrode culture: that run fails at run time
    text = SMALL.replace("seeds = [1, 2]", "seeds = [1]").replace(
        "window_ms = [25.0, 50.0]", "window_ms = [25.0]\n\n[grid.core]\nn_channels = [64, 16]")
    sweep = load_sweep(sweep_file(tmp_path, text))
    out = tmp_path / "out"
    outcome = run_sweep(sweep, out, workers=1)
    bad = sweep.runs[1]
    assert outcome.done == [sweep.runs[0].run_id]
    assert list(outcome.failed) == [bad.run_id] and "N = 16 channels" in outcome.failed[bad.run_id]
    record = json.loads((out / "failed" / f"{bad.run_id}.json").read_text())
    assert "Traceback" in record["traceback"]
    write_tables(sweep, out)
    table = pd.read_csv(out / "results.csv")
    assert list(table["status"]) == ["done", "failed"]
    assert np.isnan(table.loc[1, "abs_rate_error_hz"])


def test_report_draws_the_standard_figures(embedded, tmp_path):
    sweep, out, _ = embedded
    copy = tmp_path / "r"
    shutil.copytree(out, copy)
    paths = report(sweep, copy)
    names = sorted(p.name for p in paths)
    assert names == ["bursts.png", "heatmap.png", "seeds.png", "theta.png"]
    assert all(p.stat().st_size > 5000 for p in paths)


def test_cli_plan_run_report(tmp_path):
    from click.testing import CliRunner
    from bioloop.host.cli import main
    f = sweep_file(tmp_path, SMALL.replace("seeds = [1, 2]", "seeds = [3]").replace(
        "window_ms = [25.0, 50.0]", "window_ms = [25.0]"))
    r = CliRunner().invoke(main, ["sweep", "plan", str(f)])
    assert r.exit_code == 0, r.output
    assert "1 runs" in r.output and load_sweep(f).runs[0].run_id in r.output
    out = tmp_path / "o"
    r = CliRunner().invoke(main, ["sweep", "run", str(f), "--out", str(out), "--workers", "1"])
    assert r.exit_code == 0, r.output
    assert "1 run, 0 already complete, 0 failed" in r.output
    r = CliRunner().invoke(main, ["sweep", "run", str(f), "--out", str(out), "--workers", "1"])
    assert "0 run, 1 already complete" in r.output
    r = CliRunner().invoke(main, ["sweep", "report", str(out)])
    assert r.exit_code == 0, r.output
    other = sweep_file(tmp_path, SMALL, "other.toml")
    r = CliRunner().invoke(main, ["sweep", "run", str(other), "--out", str(out)])
    assert r.exit_code == 2 and "holds another sweep" in r.output
    r = CliRunner().invoke(main, ["sweep", "plan", str(tmp_path / "nope.toml")])
    assert r.exit_code == 2 and "cannot read sweep file" in r.output


# --- a real scheduler and two workers, one killed mid-sweep ---------------------------

def _dask(*args, **kw):
    exe = Path(sys.executable).with_name("dask")
    return subprocess.Popen([str(exe), *args], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True, **kw)


def _stop(proc):
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGKILL)
    proc.wait(timeout=30)


def test_real_scheduler_survives_a_killed_worker(embedded, tmp_path):
    """Scheduler and 2 workers as separate processes on 127.0.0.1; kill one worker mid-sweep.

    Every run completes exactly once (one verified directory, no leftovers) and the
    table equals the embedded cluster's, byte for byte.
    """
    sweep, ref_out, _ = embedded
    sched_file = tmp_path / "scheduler.json"
    procs = [_dask("scheduler", "--host", "127.0.0.1", "--port", "0", "--no-dashboard",
                   "--scheduler-file", str(sched_file))]
    try:
        deadline = time.monotonic() + 60
        while not sched_file.exists():
            assert time.monotonic() < deadline, "the dask scheduler did not start"
            time.sleep(0.2)
        time.sleep(0.5)
        address = json.loads(sched_file.read_text())["address"]
        workers = [_dask("worker", address, "--nthreads", "1", "--no-nanny", "--no-dashboard",
                         "--host", "127.0.0.1") for _ in range(2)]
        procs += workers
        out = tmp_path / "out"
        killed = []

        def progress(done, running, failed, total, eta):
            # once the first run is done and others are running, kill a worker
            if not killed and done >= 1:
                _stop(workers[0])
                killed.append(time.monotonic())

        outcome = run_sweep(sweep, out, scheduler=address, progress=progress)
        assert killed, "the sweep finished before a worker could be killed"
        assert sorted(outcome.done) == sorted(r.run_id for r in sweep.runs) and not outcome.failed
        dirs = sorted(p.name for p in (out / "runs").iterdir())   # no staging folders left
        assert dirs == sorted(r.run_id for r in sweep.runs)
        write_tables(sweep, out)
        assert (out / "results.csv").read_bytes() == (ref_out / "results.csv").read_bytes()
        pd.testing.assert_frame_equal(pd.read_parquet(out / "results.parquet"),
                                      pd.read_parquet(ref_out / "results.parquet"))
    finally:
        for p in reversed(procs):
            _stop(p)


def test_verilator_backend_gives_the_model_runs_words(embedded, core_library, tmp_path):
    """A sweep on the compiled RTL: the same AER log as the same run on the model, bit for bit.

    ``core_library`` (tests/conftest.py) builds the 64x64x16 library the workers load from the cache.
    """
    sweep, ref_out, _ = embedded
    text = SMALL.replace('backend = "model"', 'backend = "verilator"').replace(
        "seeds = [1, 2]", "seeds = [2]").replace("window_ms = [25.0, 50.0]", "window_ms = [50.0]")
    rtl = load_sweep(sweep_file(tmp_path, text))
    outcome = run_sweep(rtl, tmp_path / "out", workers=1)
    assert not outcome.failed, outcome.failed
    model_run = next(r for r in sweep.runs if r.seed == 2 and r.loop["window_ms"] == 50.0)
    assert rtl.runs[0].run_id != model_run.run_id          # the backend is part of the run's identity
    assert np.array_equal(np.load(run_dir(tmp_path / "out", rtl.runs[0]) / "aer.npy"),
                          np.load(run_dir(ref_out, model_run) / "aer.npy"))
