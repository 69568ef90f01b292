"""``neuroenc bench``, ``results``, ``datasets``: end to end through ``main([...])`` on MOABB's FakeDataset."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from neuroenc.cli.main import main

EXAMPLE = Path(__file__).resolve().parents[1] / "docs" / "examples" / "pipelines_mi.yml"
FAKE = "CliFake"


@pytest.fixture(scope="module")
def fake_name():
    from moabb.datasets.fake import FakeDataset

    from neuroenc.datasets.moabb_adapter import MoabbDataset
    from neuroenc.datasets.registry import register_dataset

    register_dataset(
        MoabbDataset(FakeDataset(n_subjects=3, n_sessions=1, n_runs=1, seed=11, duration=60, code=FAKE)), name=FAKE
    )
    return FAKE


def run(capsys, *args):
    code = main([str(a) for a in args])
    out = capsys.readouterr()
    return code, out.out, out.err


@pytest.fixture(scope="module")
def bench_run(fake_name, tmp_path_factory):
    """One serial bench: (results file, JSON records printed)."""
    folder = tmp_path_factory.mktemp("bench")
    results = folder / "results.h5"
    from contextlib import redirect_stdout
    from io import StringIO

    buf = StringIO()
    with redirect_stdout(buf):
        code = main(["bench", str(EXAMPLE), "--datasets", fake_name, "--results", str(results), "--json"])
    assert code == 0
    return results, json.loads(buf.getvalue())


def test_bench_scores_equal_the_evaluation_run_directly(bench_run, fake_name):
    from neuroenc.datasets.paradigms import MotorImagery
    from neuroenc.datasets.registry import get_dataset
    from neuroenc.evaluation.evaluations import WithinSession
    from neuroenc.evaluation.pipelines import load_pipelines
    from neuroenc.evaluation.store import ResultsStore

    results, records = bench_run
    printed = pd.DataFrame.from_records(records)
    direct = WithinSession(MotorImagery(), [get_dataset(fake_name)], random_state=42).process(load_pipelines(EXAMPLE))
    assert len(printed) == 3 * 3  # subjects x pipelines
    cols = ["dataset", "subject", "session", "pipeline", "n_samples", "n_channels"]
    pd.testing.assert_frame_equal(printed[cols], direct[cols], check_dtype=False)
    np.testing.assert_array_equal(printed["score"].to_numpy(), direct["score"].to_numpy())
    stored = ResultsStore(results).to_frame()
    assert len(stored) == 3 * 3 * 5  # every fold stored
    means = stored.groupby(["subject", "pipeline"])["score"].mean()
    for rec in records:
        assert means[(rec["subject"], rec["pipeline"])] == pytest.approx(rec["score"], rel=1e-12)


def test_bench_text_output_and_rerun_skips_stored_folds(bench_run, fake_name, capsys):
    results, records = bench_run
    before = os.stat(results).st_mtime_ns
    code, out, err = run(capsys, "bench", EXAMPLE, "--datasets", fake_name, "--results", results, "--progress")
    assert code == 0
    assert "within-session evaluation of 3 pipeline(s) on CliFake" in out
    assert "Covariances + MDM" in out and "CSP + LDA" in out
    assert os.stat(results).st_mtime_ns == before  # nothing new to write
    assert "Computing rank" not in out  # MNE's logs stay out of the table


def test_progress_bar_shows_counts_and_eta(fake_name, tmp_path, capsys):
    code, out, err = run(
        capsys,
        "bench",
        EXAMPLE,
        "--datasets",
        fake_name,
        "--subjects",
        "1",
        "--results",
        tmp_path / "r.h5",
        "--progress",
    )
    assert code == 0
    lines = [ln for ln in err.splitlines() if ln.startswith("bench [")]
    assert lines and lines[-1].startswith("bench [####################] 3/3") and "ETA" in lines[-1]


def test_json_output_is_one_document_and_nothing_else(fake_name, tmp_path, capfd):
    args = ["bench", str(EXAMPLE), "--datasets", fake_name, "--subjects", "2", "--results", str(tmp_path / "r.h5")]
    assert main(args) == 0
    code = main([*args, "--json"])
    out = capfd.readouterr().out
    assert code == 0
    # the first (text) run printed its table; the JSON run printed exactly one document after it
    doc = json.loads(out[out.index("[{") :])
    assert [r["pipeline"] for r in doc] == ["CSP + LDA", "Covariances + MDM", "Tangent space + LR"]


def test_local_processes_run_equals_serial_run(bench_run, tmp_path, capsys):
    _, serial = bench_run
    code, out, err = run(
        capsys, "bench", EXAMPLE, "--datasets", FAKE, "--results", tmp_path / "p.h5", "--n-jobs", "2", "--json"
    )
    assert code == 0, err[-2000:]
    assert [(r["subject"], r["pipeline"], r["score"]) for r in json.loads(out)] == [
        (r["subject"], r["pipeline"], r["score"]) for r in serial
    ]


def test_dask_workers_run_equals_serial_run(bench_run, tmp_path):
    """A real 2-process LocalCluster started by ``--dask-workers 2``, in a fresh interpreter."""
    _, serial = bench_run
    script = (
        "import sys\n"
        "from moabb.datasets.fake import FakeDataset\n"
        "from neuroenc.datasets.moabb_adapter import MoabbDataset\n"
        "from neuroenc.datasets.registry import register_dataset\n"
        "from neuroenc.cli.main import main\n"
        f"register_dataset(MoabbDataset(FakeDataset(n_subjects=3, n_sessions=1, n_runs=1, seed=11, duration=60, "
        f"code={FAKE!r})), name={FAKE!r})\n"
        "if __name__ == '__main__':\n"
        "    sys.exit(main(sys.argv[1:]))\n"
    )
    (tmp_path / "run_cli.py").write_text(script)
    args = ["bench", str(EXAMPLE), "--datasets", FAKE, "--results", str(tmp_path / "d.h5"), "--dask-workers", "2"]
    proc = subprocess.run(
        [sys.executable, str(tmp_path / "run_cli.py"), *args, "--json"],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp_path,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    distributed = json.loads(proc.stdout)  # stdout holds the JSON only, workers' output included
    assert [(r["subject"], r["pipeline"], r["score"]) for r in distributed] == [
        (r["subject"], r["pipeline"], r["score"]) for r in serial
    ]


def test_results_show_export_stats_plot(bench_run, tmp_path, capsys):
    results, records = bench_run
    code, out, _ = run(capsys, "results", "show", results, "--json")
    assert code == 0
    shown = json.loads(out)
    assert [(r["subject"], r["pipeline"]) for r in shown] == [(r["subject"], r["pipeline"]) for r in records]
    assert [r["score"] for r in shown] == pytest.approx([r["score"] for r in records], rel=1e-12)

    code, out, _ = run(capsys, "results", "show", results, "--pipeline", "CSP + LDA", "--folds")
    assert code == 0 and out.count("CSP + LDA") == 3 * 5 + 1 and "MDM" not in out

    code, out, _ = run(capsys, "results", "export", results, tmp_path / "all.csv", "--subject", "1")
    assert code == 0
    csv = pd.read_csv(tmp_path / "all.csv")
    assert len(csv) == 3 * 5 and set(csv["subject"]) == {1}

    from neuroenc.evaluation.statistics import compute_dataset_statistics
    from neuroenc.evaluation.store import ResultsStore

    code, out, _ = run(capsys, "results", "stats", results, "--json")
    assert code == 0
    stats = json.loads(out)
    expected = compute_dataset_statistics(ResultsStore(results).to_frame(), random_state=42)
    expected = expected[expected["pipe1"] != expected["pipe2"]]
    assert [s["p"] for s in stats["stats"]] == pytest.approx(expected["p"].tolist())
    assert [s["smd"] for s in stats["stats"]] == pytest.approx(expected["smd"].tolist())
    assert set(stats["p"]) == {"CSP + LDA", "Covariances + MDM", "Tangent space + LR"}

    code, out, _ = run(capsys, "results", "stats", results)
    assert code == 0 and "Stouffer" in out

    for kind, extra in [("score", []), ("paired", ["--pipelines", "CSP + LDA", "Covariances + MDM"]), ("summary", [])]:
        png = tmp_path / f"{kind}.png"
        code, out, err = run(capsys, "results", "plot", results, "--kind", kind, "--out", png, *extra)
        assert code == 0, err
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_datasets_list(fake_name, capsys):
    code, out, _ = run(capsys, "datasets", "list", "--json")
    assert code == 0
    table = {row["name"]: row for row in json.loads(out)}
    assert table[fake_name]["subjects"] == 3 and table[fake_name]["paradigm"] == "imagery"
    assert "PhysionetMI" in table
    code, out, _ = run(capsys, "datasets", "list")
    assert code == 0 and fake_name in out and "moabb:<ClassName>" in out


def one_line_error(err: str, command: str) -> str:
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith(f"neuroenc {command}: error: "), err
    return lines[0]


@pytest.mark.parametrize(
    ("yaml_text", "message"),
    [
        ("name: a\nsteps: [LDA\n", "invalid YAML at line"),
        ("name: a\nsteps:\n  - Covariances\n  - NotAClass\n", "pipeline 'a', step 1: unknown step class 'NotAClass'"),
        ("name: a\nsteps:\n  - os.system\n", "is not allowed"),
    ],
)
def test_bad_pipeline_files_exit_2_with_one_line(fake_name, tmp_path, capsys, yaml_text, message):
    bad = tmp_path / "bad.yml"
    bad.write_text(yaml_text)
    code, out, err = run(capsys, "bench", bad, "--datasets", fake_name, "--results", tmp_path / "r.h5")
    assert code == 2 and out == ""
    line = one_line_error(err, "bench")
    assert "bad.yml" in line and message in line
    assert not (tmp_path / "r.h5").exists()  # checked before any work


def test_bad_bench_inputs_exit_2_with_one_line(fake_name, tmp_path, capsys):
    cases = [
        (["--datasets", "NoSuchDataset"], "Unknown dataset 'NoSuchDataset'"),
        (["--datasets", fake_name, "--subjects", "99"], "99"),
        (["--datasets", fake_name, "--paradigm", "telepathy"], "Unknown paradigm 'telepathy'"),
        (["--datasets", fake_name, "--paradigm-param", "fmin"], "--paradigm-param expects KEY=VALUE"),
        (["--datasets", fake_name, "--paradigm-param", "colour=red"], "does not accept"),
        (["--datasets", fake_name, "--dask-workers", "0"], "number of Dask workers must be >= 1"),
        (["--datasets", fake_name, "--results", tmp_path / "no" / "r.h5"], "does not exist"),
    ]
    for extra, message in cases:
        args = ["bench", EXAMPLE, "--results", tmp_path / "r.h5", *extra]
        if "--results" in extra:
            args = ["bench", EXAMPLE, *extra]
        code, out, err = run(capsys, *args)
        assert code == 2, (extra, err)
        assert message in one_line_error(err, "bench"), err

    code, _, err = run(capsys, "bench", tmp_path / "missing.yml", "--datasets", fake_name)
    assert code == 2 and "pipeline file not found" in one_line_error(err, "bench")
    code, _, err = run(capsys, "bench", EXAMPLE, "--datasets", fake_name, "--dask-workers", "2", "--scheduler", "x")
    assert code == 2 and "not allowed with argument" in one_line_error(err, "bench")
    code, _, err = run(capsys, "bench", EXAMPLE, "--datasets", fake_name, "--evaluation", "sideways")
    assert code == 2 and "invalid choice: 'sideways'" in one_line_error(err, "bench")


@pytest.mark.parametrize("content", [b"", b"not an hdf5 file"])
def test_unreadable_results_files_exit_2(tmp_path, capsys, content, fake_name):
    bad = tmp_path / "bad.h5"
    bad.write_bytes(content)
    for args in (
        ["results", "show", bad],
        ["results", "stats", bad],
        ["bench", EXAMPLE, "--datasets", fake_name, "--results", bad],
    ):
        code, out, err = run(capsys, *args)
        assert code == 2 and out == ""
        assert "bad.h5" in one_line_error(err, " ".join(map(str, args[:2])) if args[0] == "results" else "bench")
    code, _, err = run(capsys, "results", "show", tmp_path / "missing.h5")
    assert code == 2 and "results file not found" in one_line_error(err, "results show")


def test_results_selection_and_plot_arguments(bench_run, tmp_path, capsys):
    results, _ = bench_run
    code, _, err = run(capsys, "results", "show", results, "--pipeline", "nope")
    assert code == 2 and "stored: CSP + LDA, Covariances + MDM, Tangent space + LR" in one_line_error(
        err, "results show"
    )
    code, _, err = run(capsys, "results", "plot", results, "--kind", "paired", "--out", tmp_path / "x.png")
    assert code == 2 and "--pipelines PIPE1 PIPE2" in one_line_error(err, "results plot")
    code, _, err = run(capsys, "results", "export", results, tmp_path / "x.txt")
    assert code == 2 and ".csv" in one_line_error(err, "results export")
    code, _, err = run(capsys, "results", "frobnicate", results)
    assert code == 2 and "invalid choice" in one_line_error(err, "results")


def test_unexpected_errors_exit_1_with_traceback(fake_name, monkeypatch, capsys):
    import neuroenc.datasets.registry as registry

    def broken() -> None:
        raise RuntimeError("boom")

    monkeypatch.setattr(registry, "list_datasets", broken)
    code, _, err = run(capsys, "datasets", "list")
    assert code == 1
    assert (
        "Traceback" in err
        and err.strip().splitlines()[-1] == "neuroenc datasets list: unexpected error: RuntimeError: boom"
    )


def test_help_lists_every_command(capsys):
    code, out, _ = run(capsys, "--help")
    assert code == 0
    for command in ("bench", "results", "datasets", "demo", "info"):
        assert command in out
    code, out, _ = run(capsys, "bench", "--help")
    assert code == 0 and "--scheduler" in out and "--dask-workers" in out


def test_demo_evaluation_stores_folds_prints_their_means_and_plots(data_dir, tmp_path, capsys):
    from neuroenc.cli.demo import _within_session_evaluation
    from neuroenc.evaluation.store import ResultsStore

    rows = _within_session_evaluation(data_dir, False, tmp_path)
    out = capsys.readouterr().out
    assert "WithinSession evaluation (MOABB-style), PhysioNet S001" in out
    assert [r["pipeline"] for r in rows] == ["CSP + LDA", "Covariances + MDM", "Tangent space + LR"]
    folds = ResultsStore(tmp_path / "results.h5").to_frame()
    assert len(folds) == 3 * 5 and set(folds["evaluation"]) == {"WithinSession"}
    means = folds.groupby("pipeline")["score"].mean()
    for row in rows:
        assert row["roc auc"] == f"{means[row['pipeline']]:.3f}" and row["folds"] == 5 and row["trials"] == 45
    assert (tmp_path / "scores.png").read_bytes()[:4] == b"\x89PNG"
