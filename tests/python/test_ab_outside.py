"""An experiment run elsewhere, analysed by the command line alone: a mobile-game test
exported as one CSV row per player (player id, `version` with two arms neither of which is
`control`, day-1 and day-7 retention written TRUE/FALSE, rounds played, CRLF line ends, no
final newline, one player with about 1,000 times the median rounds). The printed results
must equal statsmodels/scipy on the same data; the rows land in schema ab; the same table
loaded into the warehouse gives the same numbers through --from-table."""

from __future__ import annotations

import io

import numpy as np
import pandas as pd
import pytest
from scipy import stats
from statsmodels.stats.proportion import confint_proportions_2indep, proportions_ztest

from python_jobs import db
from python_jobs.ab import __main__ as ab_cli
from python_jobs.ab import sequential

PLAYERS = 3000
EXPERIMENT = "cookie_gates"


def _players(seed: int = 5) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    version = np.where(rng.random(PLAYERS) < 0.5, "gate_30", "gate_40")
    rounds = rng.negative_binomial(1, 1 / 50, PLAYERS)
    rounds[123] = int(np.median(rounds)) * 1000  # the outlier
    day1 = rng.random(PLAYERS) < 0.45
    day7 = rng.random(PLAYERS) < np.where(version == "gate_30", 0.19, 0.17)
    return pd.DataFrame({"userid": 337 + 29 * np.arange(PLAYERS), "version": version,
                         "sum_gamerounds": rounds, "retention_1": day1, "retention_7": day7})


def _write_csv(frame: pd.DataFrame, path) -> None:
    lines = ["userid,version,sum_gamerounds,retention_1,retention_7"]
    lines += [f"{r.userid},{r.version},{r.sum_gamerounds},{'TRUE' if r.retention_1 else 'FALSE'},"
              f"{'TRUE' if r.retention_7 else 'FALSE'}" for r in frame.itertuples()]
    path.write_bytes("\r\n".join(lines).encode())  # CRLF, no final newline


COMMON = ["--experiment", EXPERIMENT, "--unit-column", "userid", "--variant-column", "version",
          "--control", "gate_30", "--metric", "retention_7:proportion",
          "--metric", "retention_1:proportion", "--metric", "sum_gamerounds:mean",
          "--goal", "retention_7", "--guardrail", "retention_1", "--secondary",
          "sum_gamerounds", "--print", "csv", "--log-level", "WARNING"]


def _printed(out: str) -> pd.DataFrame:
    body = out.split("\n", 1)[1]  # first line: the summary
    body = body[:body.rindex("run ")]
    return pd.read_csv(io.StringIO(body)).set_index(["metric", "method"])


@pytest.fixture(scope="module")
def game(tmp_path_factory) -> dict:
    tmp = tmp_path_factory.mktemp("ab_outside")
    frame = _players()
    path = tmp / "cookie_cats.csv"
    _write_csv(frame, path)
    return {"frame": frame, "path": path, "tmp": tmp}


def test_csv_analysed_by_the_cli_equals_statsmodels(game, fresh_database, capsys):
    database = fresh_database("ab_outside")
    frame, path = game["frame"], game["path"]
    assert ab_cli.main(["analyze", "--from-file", str(path), "--database", database,
                        "--report", str(game["tmp"] / "report.md"), *COMMON]) == 0
    printed = _printed(capsys.readouterr().out)
    control, treat = frame[frame["version"] == "gate_30"], frame[frame["version"] == "gate_40"]
    for metric in ("retention_7", "retention_1"):
        row = printed.loc[(metric, "two_proportion_z")]
        xt, xc = int(treat[metric].sum()), int(control[metric].sum())
        _, p = proportions_ztest([xt, xc], [len(treat), len(control)])
        low, high = confint_proportions_2indep(xt, len(treat), xc, len(control),
                                               method="wald", compare="diff")
        np.testing.assert_allclose([row["p_value"], row["ci_low"], row["ci_high"]],
                                   [p, low, high], rtol=1e-9)
    guard = printed.loc[("retention_1", "two_proportion_z")]
    np.testing.assert_allclose(guard["harm_p_value"], proportions_ztest(
        [int(treat["retention_1"].sum()), int(control["retention_1"].sum())],
        [len(treat), len(control)], alternative="smaller")[1], rtol=1e-9)
    rounds = printed.loc[("sum_gamerounds", "welch_t")]
    ref = stats.ttest_ind(treat["sum_gamerounds"], control["sum_gamerounds"], equal_var=False)
    np.testing.assert_allclose(rounds["p_value"], ref.pvalue, rtol=1e-9)
    written = _written(database)
    assert set(written["metric"]) == {"retention_7", "retention_1", "sum_gamerounds"}
    assert set(written["control_variant"]) == {"gate_30"}
    assert set(written["adjustment_family"].dropna()) == {"goal", "guardrail", "secondary"}
    verdicts = (game["tmp"] / "report.md").read_text().split("## Verdicts")[1]
    assert verdicts.index("Goal metrics") < verdicts.index("Guardrails")

    # capping: the outlier moves the count metric's p-value; the capped test equals scipy
    # on the winsorised values, with the pooled 99.9th percentile as the threshold
    assert ab_cli.main(["analyze", "--from-file", str(path), "--database", database,
                        "--report", str(game["tmp"] / "capped.md"), "--cap",
                        "sum_gamerounds:p99.9", *COMMON]) == 0
    capped = _printed(capsys.readouterr().out).loc[("sum_gamerounds", "welch_t")]
    threshold = np.quantile(frame["sum_gamerounds"].to_numpy(float), 0.999)
    ref = stats.ttest_ind(np.minimum(treat["sum_gamerounds"], threshold),
                          np.minimum(control["sum_gamerounds"], threshold), equal_var=False)
    np.testing.assert_allclose([capped["p_value"], capped["cap_value"]],
                               [ref.pvalue, threshold], rtol=1e-9)
    assert int(capped["capped_units"]) == int(
        (treat["sum_gamerounds"] > threshold).sum())
    print(f"\nsum_gamerounds Welch p: {rounds['p_value']:.3f} raw, {capped['p_value']:.3f} "
          "capped at the 99.9th percentile")


def _written(database: str) -> pd.DataFrame:
    with db.connect(database) as conn:
        return db.read_sql(conn, "select * from ab.latest_experiment_results where "
                                 "experiment_id = %s", (EXPERIMENT,))


def test_the_same_table_in_the_warehouse_gives_the_same_numbers(game, fresh_database,
                                                                 capsys):
    database = fresh_database("ab_outside_table")
    frame = game["frame"]
    with db.connect(database) as conn:
        db.execute(conn, "create schema if not exists games")
        db.write_table(conn, "games.cookie_cats", frame, replace=True)
    assert ab_cli.main(["analyze", "--from-table", "games.cookie_cats", "--database",
                        database, "--report", str(game["tmp"] / "table.md"), *COMMON]) == 0
    from_table = _printed(capsys.readouterr().out)
    assert ab_cli.main(["analyze", "--from-file", str(game["path"]), "--database", database,
                        "--report", str(game["tmp"] / "file.md"), *COMMON]) == 0
    from_file = _printed(capsys.readouterr().out)
    pd.testing.assert_frame_equal(from_table, from_file, rtol=1e-12)
    # a missing table is one line and exit status 2, like bad file input
    assert ab_cli.main(["analyze", "--from-table", "games.nope", "--database", database,
                        *COMMON]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: --from-table games.nope:") and len(err.splitlines()) == 1


@pytest.mark.parametrize(("content", "message"), [
    ("userid,version,r\r\n1,a,TRUE\r\n2,b,maybe", "column 'r', row 3: 'maybe' is not a boolean"),
    ("userid,version,r\n1,a,TRUE\n2,b,FALSE", "--control 'control' is not an arm"),
])
def test_bad_input_is_one_line_and_exit_status_2(tmp_path, capsys, content, message):
    path = tmp_path / "bad.csv"
    path.write_text(content)
    status = ab_cli.main(["analyze", "--from-file", str(path), "--experiment", "x",
                          "--unit-column", "userid", "--variant-column", "version",
                          "--metric", "r:proportion", "--database", "unused_no_such_db"])
    err = capsys.readouterr().err
    assert status == 2
    assert message in err and len(err.strip().splitlines()) == 1
    assert "Traceback" not in err


def test_sequential_read_out_of_one_look(game, fresh_database, capsys):
    """--sequential always_valid: the mSPRT p-value of this look, by the published formula
    from the statsmodels-equal effect and its unpooled variance; --sequential group: the
    repeated confidence interval with the boundary of look 2 of 4."""
    database = fresh_database("ab_outside_sequential")
    frame, path = game["frame"], game["path"]
    control, treat = frame[frame["version"] == "gate_30"], frame[frame["version"] == "gate_40"]
    pc, pt = control["retention_7"].mean(), treat["retention_7"].mean()
    nc, nt = len(control), len(treat)
    effect = pt - pc
    variance = pc * (1 - pc) / nc + pt * (1 - pt) / nt
    assert ab_cli.main(["analyze", "--from-file", str(path), "--database", database,
                        "--report", str(game["tmp"] / "seq.md"), "--sequential",
                        "always_valid", "--tuning", "3000", *COMMON]) == 0
    row = _printed(capsys.readouterr().out).loc[("retention_7", "two_proportion_z")]
    rho2 = (-2 * np.log(0.05) + np.log(-2 * np.log(0.05) + 1)) / 3000
    tau2 = rho2 * variance * (nc + nt)
    lam = np.sqrt(variance / (variance + tau2)) * np.exp(
        tau2 * effect**2 / (2 * variance * (variance + tau2)))
    np.testing.assert_allclose(row["p_value_sequential"], min(1.0, 1 / lam), rtol=1e-9)
    assert ab_cli.main(["analyze", "--from-file", str(path), "--database", database,
                        "--report", str(game["tmp"] / "seq.md"), "--sequential", "group",
                        "--looks", "4", "--look", "2", *COMMON]) == 0
    row = _printed(capsys.readouterr().out).loc[("retention_7", "two_proportion_z")]
    bound = sequential.boundaries([0.25, 0.5])[-1]
    np.testing.assert_allclose([row["ci_low_sequential"], row["ci_high_sequential"]],
                               [effect - bound * np.sqrt(variance),
                                effect + bound * np.sqrt(variance)], rtol=1e-9)
