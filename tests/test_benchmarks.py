"""The benchmark scripts run (tiny shapes); no test asserts a time."""

from benchmarks import group_conv


def test_group_conv_benchmark_runs_every_candidate(capsys):
    rows = group_conv.main(["--shape", "1", "8", "8", "8", "--groups", "2", "--repeats", "1"])
    modes = {row[1] for row in rows}
    assert modes == set(group_conv.MODES[group_conv.BACKEND])
    for _, _, auto_to, results, _, _ in rows:
        assert auto_to in ("native", "split")
        assert set(results) == set(group_conv.CANDIDATES)
        assert all(ms > 0 for ms in results.values())
    assert "| G | mode |" in capsys.readouterr().out


def test_class_isolation_benchmark_reports_mulnet_as_exactly_isolated():
    from benchmarks import class_isolation

    rows = class_isolation.main(["--samples", "1"])
    assert rows["mulnet_shapes64"][1] == 0.0
    assert all(inside > 0 for inside, _ in rows.values())


def test_train_step_benchmark_runs():
    from benchmarks import train_step

    rows, pipeline = train_step.main(
        ["--models", "groupdnet_shapes64", "--batch-size", "2", "--steps", "1", "--jit", "false"]
    )
    assert rows[0][0] == "groupdnet_shapes64" and rows[0][2] > 0 and pipeline > 0
