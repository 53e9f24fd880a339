"""Predictive CLV: the summary on a hand-checked fixture, the published CDNOW estimates, lifetimes cross-checks, the
planted truth of the sample data, warnings and refusals.

CDNOW (Fader, Hardie & Lee 2005; files copied into ``fixtures/cdnow/`` from ``shared/data/cdnow/``): the BG/NBD fit on
the published summary must reproduce r 0.243, α 4.414, a 0.793, b 2.426 (weeks) and LL −9582.4, the Gamma-Gamma fit on
the 946 repeat buyers p 6.25, q 3.74, γ 15.44, each within 0.5%; customer 1 expects 1.226 purchases in 39 weeks.

lifetimes 0.11.3 under pandas 3.1 / numpy 2.4 / scipy 1.17 (test-only dependency, ``requirements-dev.txt``): its
fitters (BetaGeoFitter, GammaGammaFitter with numpy arrays or Series), their ``summary`` (se(coef)), predictions,
``customer_lifetime_value`` and ``summary_data_from_transaction_data`` work and are cross-checked here.
``calibration_and_holdout_data`` fails under pandas 3 when it is given no ``monetary_value_col`` ("No objects to
concatenate": its holdout count aggregates an empty column set), so we pass one. Its ``freq="W"`` counts calendar
weeks (periods), not days / 7, so the cross-checks use ``freq="D", freq_multiplier=7`` (exact weeks, as the CDNOW
summary). Its plotting helpers need matplotlib, which the project does not use; the calibration frame is compared
with the same group-by the plot does.
"""

from __future__ import annotations

import json
import warnings
from datetime import date
from pathlib import Path

import ibis
import numpy as np
import pandas as pd
import pytest
import sqlglot
from ibis.config import Config
from sklearn.metrics import roc_auc_score

from crm_core import clv, ingest, store
from crm_core.sample import SAMPLE_DIR

with warnings.catch_warnings():  # lifetimes sets a pandas option that pandas 3 deprecates
    warnings.simplefilter("ignore")
    from lifetimes import BetaGeoFitter, GammaGammaFitter
    from lifetimes.utils import calibration_and_holdout_data, summary_data_from_transaction_data

CDNOW = Path(__file__).parent / "fixtures" / "cdnow"
CAL_END, HOLDOUT_END = date(1997, 9, 30), date(1998, 6, 30)
PUBLISHED_BGNBD = {"r": 0.243, "alpha": 4.414, "a": 0.793, "b": 2.426}
PUBLISHED_GG = {"p": 6.25, "q": 3.74, "gamma": 15.44}


# --- fixtures --------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def cdnow_summary() -> pd.DataFrame:
    """The published summary: ID, frequency, recency, T (weeks, rounded to 2 decimals) and zbar."""
    s = pd.read_csv(CDNOW / "cdnow_customers_summary_with_transactions.csv")
    return s.rename(columns={"x": "frequency", "t_x": "recency", "zbar": "monetary_value"})


@pytest.fixture(scope="module")
def cdnow_transactions() -> pd.DataFrame:
    """CDNOW_sample.txt: one row per purchase (several on one day are possible): id, date, dollars."""
    tx = pd.read_csv(CDNOW / "CDNOW_sample.txt", sep=r"\s+", header=None,
                     names=["master_id", "id", "date", "cds", "dollars"], dtype={"date": str})
    tx["date"] = pd.to_datetime(tx["date"], format="%Y%m%d")
    return tx


@pytest.fixture(scope="module")
def cdnow_store(tmp_path_factory, cdnow_transactions):
    """A store holding CDNOW imported as a bare transaction log (customer id, date, amount) through the importer."""
    folder = tmp_path_factory.mktemp("cdnow_store")
    path = folder / "cdnow_transactions.csv"
    log = pd.DataFrame({"customer_id": cdnow_transactions["id"], "date": cdnow_transactions["date"].dt.date,
                        "amount": cdnow_transactions["dollars"]})
    log.to_csv(path, index=False)
    con = store.connect(folder / "crm.duckdb")
    report = ingest.import_file(con, path, "transactions")
    assert report.outcome == "committed", report.message
    yield store.ibis_backend(con)
    con.close()


@pytest.fixture(scope="module")
def cdnow_fits(cdnow_summary):
    s = cdnow_summary
    bg = clv.BetaGeoModel().fit(s.frequency, s.recency, s["T"])
    rep = s[s.frequency > 0]
    gg = clv.GammaGammaModel().fit(rep.frequency, rep.monetary_value)
    lt_bg = BetaGeoFitter().fit(s.frequency, s.recency, s["T"])
    lt_gg = GammaGammaFitter().fit(rep.frequency, rep.monetary_value)
    return bg, gg, lt_bg, lt_gg


AS_OF = date(2024, 3, 31)


class _SparkOptions(Config):
    treat_nan_as_null: bool = False


@pytest.fixture
def six(con):
    """Seven customers, six of them with a purchase by AS_OF (D has only a return), plus an anonymous order."""
    con.execute("""INSERT INTO orders (order_id, customer_id, ordered_at, amount, is_return) VALUES
        ('1', 'A', '2024-01-01 09:00', 100, false), ('2', 'A', '2024-01-01 15:00', 50, false),
        ('3', 'A', '2024-01-15 10:00', 30, false), ('4', 'A', '2024-03-01 10:00', 60, false),
        ('5', 'B', '2024-02-10 12:00', 80, NULL),
        ('6', 'C', '2024-01-10 08:00', 200, false), ('7', 'C', '2024-02-10 08:00', 100, false),
        ('8', 'C', '2024-02-20 08:00', -60, true),
        ('9', 'D', '2024-01-20 08:00', -20, NULL),
        ('10', 'E', '2024-03-31 23:30', 40, false), ('11', 'E', '2024-04-01 00:00', 50, false),
        ('12', 'F', '2024-01-05 10:00', 0, false), ('13', 'F', '2024-02-05 10:00', 0, false),
        ('14', 'G', '2024-03-01 10:00', 50, false), ('15', 'G', '2024-03-11 10:00', 50, false),
        ('16', 'G', '2024-03-15 10:00', 25, true),
        ('17', NULL, '2024-02-01 10:00', 70, false)""")
    return store.ibis_backend(con)


# --- the summary ------------------------------------------------------------------------------------------------


class TestSummary:
    def test_hand_computed_days(self, six):
        df = clv.summary(six, AS_OF, time_unit="D").set_index("customer_id")
        # D has only a return and the anonymous order has no customer: no rows; E's second order is after AS_OF
        assert list(df.index) == ["A", "B", "C", "E", "F", "G"]
        # A: 1 Jan (100 + 50, one day), 15 Jan, 1 Mar → 2 repeat days; F: two zero-value purchases still count
        assert list(df.frequency) == [2, 0, 1, 0, 1, 1]
        # A 1 Jan → 1 Mar = 31 + 29 days; C 10 Jan → 10 Feb; F 5 Jan → 5 Feb; G 1 Mar → 11 Mar
        assert list(df.recency) == [60, 0, 31, 0, 31, 10]
        # to the end of 31 Mar: A 60 + 30; B 19 + 31; C 21 + 29 + 31; E bought on AS_OF itself; F 26 + 29 + 31; G 30
        assert list(df["T"]) == [90, 50, 81, 0, 86, 30]
        # returns: C 60 + D 20 + G 25 (flagged, positive amount) = 105 of 240 + 80 + 300 + 40 + 0 + 100 = 760
        kept = 1 - 105 / 760
        # A: repeat days 30 and 60 → 45; C: 100; G: 50; B, E, F: no repeat day with spend → 0
        assert list(df.monetary_value) == pytest.approx([45 * kept, 0, 100 * kept, 0, 0, 50 * kept])
        assert clv.return_rate(six, AS_OF) == pytest.approx(105 / 760)
        with_rate = clv.summary(six, AS_OF, time_unit="D", with_return_rate=True)
        assert list(with_rate.return_rate) == pytest.approx([105 / 760] * 6)

    def test_weeks(self, six):
        df = clv.summary(six, AS_OF).set_index("customer_id")  # weeks by default
        assert df.loc["A", "recency"] == pytest.approx(60 / 7) and df.loc["A", "T"] == pytest.approx(90 / 7)

    def test_calibration_and_holdout(self, six):
        df = clv.summary(six, AS_OF, time_unit="D", calibration_end=date(2024, 2, 15)).set_index("customer_id")
        # E and G first bought after 15 Feb: not in the calibration population
        assert list(df.index) == ["A", "B", "C", "F"]
        assert list(df.frequency) == [1, 0, 1, 1]  # A: 1 Jan, 15 Jan (1 Mar is in the holdout)
        assert list(df.recency) == [14, 0, 31, 31]
        assert list(df["T"]) == [45, 5, 36, 41]  # to the end of 15 Feb
        # returns by 15 Feb: D's 20 of 180 + 80 + 300 + 0 purchased → kept 27/28
        assert list(df.monetary_value) == pytest.approx([30 * 27 / 28, 0, 100 * 27 / 28, 0])
        assert list(df.frequency_holdout) == [1, 0, 0, 0]
        assert set(df.duration_holdout) == {45}  # 15 Feb → 31 Mar

    def test_calibration_end_must_come_first(self, six):
        with pytest.raises(ValueError, match="calibration_end 2024-03-31 must be before as_of 2024-03-31"):
            clv.summary(six, AS_OF, calibration_end=AS_OF)

    def test_unknown_time_unit(self, six):
        with pytest.raises(ValueError, match="Unknown time unit 'Y'"):
            clv.summary(six, AS_OF, time_unit="Y")

    @pytest.mark.parametrize("dialect", ["postgres", "pyspark"])
    def test_compiles_for_other_engines(self, six, dialect, monkeypatch):
        # ibis registers ``options.pyspark`` only when pyspark itself is imported; the compiler reads it.
        if dialect == "pyspark" and ibis.options.pyspark is None:
            monkeypatch.setattr(ibis.options, "pyspark", _SparkOptions())
        orders = six.table("orders")
        for expr in (clv.summary_expr(orders, AS_OF), clv.summary_expr(orders, AS_OF, "D", date(2024, 2, 1)),
                     clv.return_rate_expr(orders, AS_OF)):
            sql = ibis.to_sql(expr, dialect=dialect)
            sqlglot.parse_one(sql, read="spark" if dialect == "pyspark" else dialect)
            assert "orders" in sql

    def test_cdnow_transactions_give_the_published_summary(self, cdnow_store, cdnow_summary):
        # the importer's transaction log → orders; same-day purchases merge into one transaction
        ours = clv.summary(cdnow_store, CAL_END)
        assert len(ours) == 2357 and ours.frequency.sum() == 2457 and (ours.frequency == 0).sum() == 1411
        both = cdnow_summary.merge(ours.assign(ID=ours.customer_id.astype(int)), on="ID", suffixes=("_csv", ""))
        assert len(both) == 2357
        assert (both.frequency == both.frequency_csv).all()
        # the csv is rounded to 2 decimals: 213 days = 30.428571 weeks is 30.43 there
        for col in ("recency", "T", "monetary_value"):
            assert np.abs(both[col] - both[col + "_csv"]).max() <= 0.005 + 1e-9, col

    def test_same_summary_as_lifetimes(self, cdnow_store, cdnow_transactions):
        ours = clv.summary(cdnow_store, CAL_END)
        theirs = summary_data_from_transaction_data(cdnow_transactions, "id", "date", monetary_value_col="dollars",
                                                    observation_period_end="1997-09-30", freq="D",
                                                    freq_multiplier=7)
        theirs = theirs.reset_index().rename(columns={"id": "ID"})
        both = theirs.merge(ours.assign(ID=ours.customer_id.astype(int)), on="ID", suffixes=("_lt", ""))
        assert len(both) == len(ours) == len(theirs) == 2357
        for col in ("frequency", "recency", "T", "monetary_value"):
            np.testing.assert_allclose(both[col], both[col + "_lt"], rtol=1e-12, atol=1e-9, err_msg=col)


# --- CDNOW: the published estimates -----------------------------------------------------------------------------


class TestCdnow:
    def test_bgnbd_reproduces_the_paper(self, cdnow_fits):
        bg = cdnow_fits[0]
        for name, published in PUBLISHED_BGNBD.items():
            assert bg.params_[name] == pytest.approx(published, rel=0.005), name
        assert bg.log_likelihood_ == pytest.approx(-9582.4, abs=0.05)
        assert bg.n_customers_ == 2357 and bg.converged_

    def test_customer_1(self, cdnow_fits):
        # x = 2, t_x = 30.43, T = 38.86: 1.226 purchases expected in the next 39 weeks
        assert round(float(cdnow_fits[0].expected_purchases(39, 2, 30.43, 38.86)[0]), 3) == 1.226

    def test_gamma_gamma_reproduces_the_note(self, cdnow_fits):
        gg = cdnow_fits[1]
        assert gg.n_customers_ == 946
        for name, published in PUBLISHED_GG.items():
            assert gg.params_[name] == pytest.approx(published, rel=0.005), name

    def test_fit_from_the_imported_transactions(self, cdnow_store):
        s = clv.summary(cdnow_store, CAL_END)
        bg = clv.BetaGeoModel().fit(s.frequency, s.recency, s["T"])
        for name, published in PUBLISHED_BGNBD.items():
            assert bg.params_[name] == pytest.approx(published, rel=0.005), name
        assert bg.log_likelihood_ == pytest.approx(-9582.4, abs=0.05)  # unrounded weeks: −9582.43
        gg = clv.GammaGammaModel().fit(s.frequency, s.monetary_value)
        for name, published in PUBLISHED_GG.items():
            assert gg.params_[name] == pytest.approx(published, rel=0.005), name

    def test_no_warnings_on_cdnow(self, cdnow_store):
        res = clv.clv(cdnow_store, CAL_END)
        # 39 weeks of history, 946 of 2,357 customers repeat, spend and frequency nearly uncorrelated
        assert res.warnings == ()
        assert res.customers.clv.min() >= 0 and res.customers.clv.notna().all()


# --- lifetimes cross-checks -------------------------------------------------------------------------------------


class TestSameAsLifetimes:
    def test_bgnbd_parameters_and_standard_errors(self, cdnow_fits):
        bg, _, lt_bg, _ = cdnow_fits
        se = lt_bg.summary["se(coef)"]
        for name in ("r", "alpha", "a", "b"):
            assert bg.params_[name] == pytest.approx(lt_bg.params_[name], rel=1e-4), name
            assert bg.standard_errors_[name] == pytest.approx(se[name], rel=1e-3), name
        # lifetimes keeps −LL / n in time scaled to max T = 1; in weeks every purchase density is 1/38.86 as large
        s = 1 / 38.86
        assert bg.log_likelihood_ == pytest.approx(-lt_bg._negative_log_likelihood_ * 2357 + 2457 * np.log(s),
                                                   rel=1e-8)

    def test_bgnbd_predictions(self, cdnow_fits, cdnow_summary):
        bg, _, lt_bg, _ = cdnow_fits
        s = cdnow_summary
        args = (s.frequency.to_numpy(), s.recency.to_numpy(), s["T"].to_numpy())
        np.testing.assert_allclose(bg.probability_alive(*args), lt_bg.conditional_probability_alive(*args),
                                   rtol=1e-4)
        for t in (1, 39, 104):
            np.testing.assert_allclose(bg.expected_purchases(t, *args),
                                       lt_bg.conditional_expected_number_of_purchases_up_to_time(t, *args), rtol=1e-4)

    def test_gamma_gamma_parameters_and_spend(self, cdnow_fits, cdnow_summary):
        _, gg, _, lt_gg = cdnow_fits
        se = lt_gg.summary["se(coef)"]
        for ours, theirs in (("p", "p"), ("q", "q"), ("gamma", "v")):
            assert gg.params_[ours] == pytest.approx(lt_gg.params_[theirs], rel=1e-4), ours
            assert gg.standard_errors_[ours] == pytest.approx(se[theirs], rel=1e-3), ours
        s = cdnow_summary
        np.testing.assert_allclose(gg.expected_spend(s.frequency, s.monetary_value),
                                   lt_gg.conditional_expected_average_profit(s.frequency, s.monetary_value),
                                   rtol=1e-4)

    @pytest.mark.parametrize("months, rate", [(12, 0.01), (3, 0.0), (24, 0.05)], ids=["12m-1%", "3m-0%", "24m-5%"])
    def test_customer_lifetime_value(self, cdnow_fits, cdnow_summary, months, rate):
        bg, gg, lt_bg, lt_gg = cdnow_fits
        s = cdnow_summary
        ours = clv.customer_lifetime_value(bg, gg, s.frequency, s.recency, s["T"], s.monetary_value,
                                           horizon_months=months, discount_rate=rate, time_unit="W")
        theirs = lt_gg.customer_lifetime_value(lt_bg, s.frequency, s.recency, s["T"], s.monetary_value,
                                               time=months, discount_rate=rate, freq="W")
        np.testing.assert_allclose(ours, theirs.to_numpy(), rtol=1e-4)

    def test_calibration_holdout(self, cdnow_store, cdnow_transactions):
        cal = clv.calibration_holdout(cdnow_store, CAL_END, HOLDOUT_END)
        lt = calibration_and_holdout_data(cdnow_transactions, "id", "date", calibration_period_end="1997-09-30",
                                          observation_period_end="1998-06-30", freq="D", freq_multiplier=7,
                                          monetary_value_col="dollars")
        assert cal.total_actual == lt.frequency_holdout.sum() == 1882
        assert cal.duration_holdout == pytest.approx(39.0)  # 273 days
        lt_bg = BetaGeoFitter().fit(lt.frequency_cal, lt.recency_cal, lt.T_cal)
        lt["predicted"] = lt_bg.conditional_expected_number_of_purchases_up_to_time(39, lt.frequency_cal,
                                                                                    lt.recency_cal, lt.T_cal)
        assert cal.total_predicted == pytest.approx(lt.predicted.sum(), rel=1e-4)
        assert cal.total_predicted == pytest.approx(1882, rel=0.15)  # 1,653 predicted: BG/NBD under-predicts here
        # the plot's group-by: mean actual and predicted per number of calibration purchases, 0..6, then 7+
        by = lt.groupby("frequency_cal")[["frequency_holdout", "predicted"]].mean().iloc[:7]
        f = cal.frame
        assert list(f.calibration_purchases) == ["0", "1", "2", "3", "4", "5", "6", "7+"]
        assert f.customers.sum() == 2357 and f.customers.iloc[0] == 1411
        np.testing.assert_allclose(f.mean_actual.iloc[:7], by.frequency_holdout, rtol=1e-12)
        np.testing.assert_allclose(f.mean_predicted.iloc[:7], by.predicted, rtol=1e-4)
        seven_plus = lt[lt.frequency_cal >= 7]
        assert f.total_actual.iloc[7] == seven_plus.frequency_holdout.sum()


# --- the model on its own ---------------------------------------------------------------------------------------


class TestModels:
    def test_weighted_fit_equals_unweighted(self, cdnow_summary):
        s = cdnow_summary
        full = clv.BetaGeoModel().fit(s.frequency, s.recency, s["T"])
        c = clv.collapse(s.frequency, s.recency, s["T"])
        assert len(c) < len(s) and c.weights.sum() == len(s)
        weighted = clv.BetaGeoModel().fit(c.frequency, c.recency, c["T"], weights=c.weights)
        for name in full.params_:
            assert weighted.params_[name] == pytest.approx(full.params_[name], rel=1e-8)
            assert weighted.standard_errors_[name] == pytest.approx(full.standard_errors_[name], rel=1e-6)
        assert weighted.log_likelihood_ == pytest.approx(full.log_likelihood_, rel=1e-10)
        assert weighted.n_customers_ == full.n_customers_ == 2357

    def test_subsample_start_lands_on_the_same_optimum(self, cdnow_summary, monkeypatch):
        # with many rows both fits start from every tenth row's optimum and finish with plain Newton steps; forced on
        # CDNOW they must land where scipy's trust region lands from the usual start
        s = cdnow_summary
        rep = s[s.frequency > 0]
        bg = clv.BetaGeoModel().fit(s.frequency, s.recency, s["T"])
        gg = clv.GammaGammaModel().fit(rep.frequency, rep.monetary_value)
        newton = []
        real_newton = clv._newton
        monkeypatch.setattr(clv, "_SUBSAMPLE_ROWS", 100)
        monkeypatch.setattr(clv, "_newton", lambda *a, **k: newton.append(real_newton(*a, **k)) or newton[-1])
        bg_sub = clv.BetaGeoModel().fit(s.frequency, s.recency, s["T"])
        gg_sub = clv.GammaGammaModel().fit(rep.frequency, rep.monetary_value)
        assert len(newton) == 2 and all(out is not None for out in newton)  # both took the Newton path to the end
        for ours, theirs in ((bg_sub, bg), (gg_sub, gg)):
            assert ours.converged_
            for name in ours.params_:
                assert ours.params_[name] == pytest.approx(theirs.params_[name], rel=1e-6), name
                assert ours.standard_errors_[name] == pytest.approx(theirs.standard_errors_[name], rel=1e-5), name
            assert ours.log_likelihood_ == pytest.approx(theirs.log_likelihood_, abs=1e-6)

    def test_probability_alive_in_blocks_is_the_formula(self, cdnow_fits):
        # 20,000 customers are evaluated in blocks of 8,192; each must get 1 / (1 + a/(b+x−1) ((α+T)/(α+t_x))^(r+x))
        bg = cdnow_fits[0]
        r, al, a, b = (bg.params_[k] for k in ("r", "alpha", "a", "b"))
        rng = np.random.default_rng(3)
        x = rng.integers(0, 8, 20_000)
        t = rng.uniform(1, 78, 20_000)
        tx = np.where(x > 0, t * rng.uniform(0, 1, 20_000), 0.0)
        expected = np.where(x > 0, 1 / (1 + a / (b + x - 1) * ((al + t) / (al + tx)) ** (r + x)), 1.0)
        np.testing.assert_allclose(bg.probability_alive(x, tx, t), expected, rtol=1e-12)
        # scalars give one value; a scalar T is shared by every customer
        assert bg.probability_alive(2, 30.43, 38.86).shape == (1,)
        np.testing.assert_allclose(bg.probability_alive([2, 2], [30.43, 20.0], 38.86),
                                   [bg.probability_alive(2, 30.43, 38.86)[0], bg.probability_alive(2, 20.0, 38.86)[0]])

    def test_day_codes(self):
        # clv() codes the summary's times by whole days: 0, 1, 2 and 70 days in weeks are codes 0, 1, 2, 70 into a
        # table of days / 7 that gives the values back exactly; times that are not whole days are hashed instead
        T, recency = np.array([0, 1 / 7, 2 / 7, 10.0]), np.array([0, 1 / 7, 0, 3.0])
        times = clv._Times.of_days(recency, T, 7.0)
        assert times.t_codes.tolist() == [0, 1, 2, 70] and times.tx_codes.tolist() == [0, 1, 0, 21]
        assert len(times.t_values) == 71
        for off_grid in (recency + 0.01, -recency):
            hashed = clv._Times.of_days(off_grid, T, 7.0)
            assert len(hashed.t_values) == 4 and (hashed.tx_values[hashed.tx_codes] == off_grid).all()
        for coded in (times, hashed):
            assert (coded.t_values[coded.t_codes] == T).all()

    def test_collapse_hand_checked(self):
        c = clv.collapse([0, 2, 0, 2, 1], [0, 3.5, 0, 3.5, 1.0], [5, 9, 5, 9, 9], weights=[1, 2, 3, 4, 5])
        assert c.to_dict("list") == {"frequency": [0, 2, 1], "recency": [0.0, 3.5, 1.0], "T": [5.0, 9.0, 9.0],
                                     "weights": [4.0, 6.0, 5.0]}

    def test_parameters_frame(self, cdnow_fits):
        bg = cdnow_fits[0]
        df = bg.parameters()
        assert list(df.parameter) == ["r", "alpha", "a", "b"] and set(df.model) == {"BG/NBD"}
        row = df.set_index("parameter").loc["r"]
        assert row.lower_95 == pytest.approx(row.estimate - 1.96 * row.standard_error)

    def test_refusals(self):
        with pytest.raises(ValueError, match="No customers to fit"):
            clv.BetaGeoModel().fit([], [], [])
        with pytest.raises(ValueError, match="None of the 3 customers has made a repeat purchase"):
            clv.BetaGeoModel().fit([0, 0, 0], [0, 0, 0], [5, 4, 3])
        with pytest.raises(ValueError, match="recency must be between 0 and T"):
            clv.BetaGeoModel().fit([1, 0], [6, 0], [5, 4])
        with pytest.raises(ValueError, match="frequency must be whole numbers"):
            clv.BetaGeoModel().fit([1.5, 0], [1, 0], [5, 4])
        with pytest.raises(ValueError, match="No customers to fit: the Gamma-Gamma"):
            clv.GammaGammaModel().fit([], [])
        with pytest.raises(ValueError, match="None of the 2 customers has a repeat purchase with a positive spend"):
            clv.GammaGammaModel().fit([0, 3], [0, 0])
        with pytest.raises(ValueError, match="not fitted yet"):
            clv.BetaGeoModel().probability_alive(1, 1, 2)


# --- end to end on the store ------------------------------------------------------------------------------------


class TestClv:
    def test_hostile_fixture_gives_no_negative_or_missing_value(self, six):
        res = clv.clv(six, AS_OF, time_unit="D", horizon_months=6)
        df = res.customers.set_index("customer_id")
        assert list(df.index) == ["A", "B", "C", "E", "F", "G"]  # D, with only a return, has no history
        assert list(df.columns) == list(clv.COLUMN_HELP)[1:]
        for col in ("p_alive", "expected_purchases", "expected_spend", "clv"):
            assert df[col].notna().all() and (df[col] >= 0).all(), col
        assert (df.p_alive <= 1).all()
        # without a repeat purchase (B, E) or without spend (F): the population's spend
        assert df.loc[["B", "E", "F"], "expected_spend"].tolist() == pytest.approx([res.population_mean_spend] * 3)
        assert df.loc["E", "p_alive"] == 1.0  # bought once, on the as-of day itself (T = 0)
        assert res.return_rate == pytest.approx(105 / 760)
        # 90 days of history and 4 repeat buyers: both warnings
        assert any("Only 90 days of purchase history" in w for w in res.warnings)
        assert any("Only 4 of 6 customers (66.7%) have bought more than once" in w for w in res.warnings)

    def test_clv_is_discounted_expected_purchases_times_spend(self, cdnow_store):
        res = clv.clv(cdnow_store, CAL_END, horizon_months=2, discount_rate=0.1)
        df = res.customers
        x, tx, t = df.frequency, df.recency, df["T"]
        month1 = res.bgnbd.expected_purchases(4.345, x, tx, t)
        month2 = res.bgnbd.expected_purchases(2 * 4.345, x, tx, t) - month1
        expected = df.expected_spend * (month1 / 1.1 + month2 / 1.1**2)
        np.testing.assert_allclose(df.clv, expected, rtol=1e-9)
        np.testing.assert_allclose(df.expected_purchases, month1 + month2, rtol=1e-9)
        assert set(res.timings) == {"summary", "fit_bgnbd", "fit_gamma_gamma", "predict", "total"}
        assert res.totals["clv"] == pytest.approx(df.clv.sum())

    def test_clv_fits_what_fit_fits(self, cdnow_store):
        # clv() codes recency and T by their whole days instead of hashing the values; the fits must not notice
        res = clv.clv(cdnow_store, CAL_END)
        s = clv.summary(cdnow_store, CAL_END)
        bg = clv.BetaGeoModel().fit(s.frequency, s.recency, s["T"])
        gg = clv.GammaGammaModel().fit(s.frequency, s.monetary_value)
        for ours, theirs in ((res.bgnbd, bg), (res.gamma_gamma, gg)):
            for name in theirs.params_:
                assert ours.params_[name] == pytest.approx(theirs.params_[name], rel=1e-9), name
                assert ours.standard_errors_[name] == pytest.approx(theirs.standard_errors_[name], rel=1e-9), name
            assert ours.log_likelihood_ == pytest.approx(theirs.log_likelihood_, rel=1e-12)
        assert res.bgnbd.n_rows_ == bg.n_rows_ == 946 + s.loc[s.frequency == 0, "T"].nunique()
        np.testing.assert_allclose(res.customers.p_alive, bg.probability_alive(s.frequency, s.recency, s["T"]),
                                   rtol=1e-9)

    @pytest.mark.parametrize("spend, flagged", [([10.0, 20, 30, 40], "1.00"), ([40.0, 30, 20, 10], "-1.00"),
                                                ([10.0, 20, 30, 40, 40, 30, 20, 10], None)],
                             ids=["rises", "falls", "unrelated"])
    def test_spend_that_moves_with_frequency_is_flagged(self, spend, flagged):
        # 200 repeat buyers with 1, 2, 3, 4 purchases, 30 weeks old. Spend 10..40 rising with the purchases has
        # correlation 1, falling −1; the mirrored pattern has Σ(x − 2.5)(m − 25) = 0, so no warning
        frame = pd.DataFrame({"frequency": [1, 2, 3, 4] * 50, "T": 30.0, "monetary_value": spend * (200 // len(spend))})
        warns = clv.sufficiency_warnings(frame)
        if flagged is None:
            assert warns == []
        else:
            assert len(warns) == 1 and f"move together (correlation {flagged})" in warns[0]

    def test_parameters_table(self, cdnow_store):
        p = clv.clv(cdnow_store, CAL_END).parameters()
        assert list(p.parameter) == ["r", "alpha", "a", "b", "p", "q", "gamma"]
        assert p.standard_error.notna().all() and p.help.notna().all()

    def test_refuses_an_empty_store(self, con):
        with pytest.raises(ValueError, match="No customer has a purchase on or before 2024-03-31"):
            clv.clv(store.ibis_backend(con), AS_OF)

    def test_refuses_without_repeat_buyers(self, con):
        con.execute("""INSERT INTO orders (order_id, customer_id, ordered_at, amount) VALUES
            ('1', 'A', '2024-01-01', 10), ('2', 'B', '2024-02-01', 20)""")
        with pytest.raises(ValueError, match="None of the 2 customers has made a repeat purchase"):
            clv.clv(store.ibis_backend(con), AS_OF)

    def test_bad_arguments(self, six):
        with pytest.raises(ValueError, match="horizon_months must be a whole number"):
            clv.clv(six, AS_OF, horizon_months=0)
        with pytest.raises(ValueError, match="discount_rate is a monthly rate"):
            clv.clv(six, AS_OF, discount_rate=-0.1)


@pytest.fixture(scope="module")
def result(sample_store):
    """clv() on the bundled sample, its return rate and the planted truth."""
    con = store.connect(sample_store)
    try:
        backend = store.ibis_backend(con)
        truth = json.loads((SAMPLE_DIR / "ground_truth.json").read_text())
        as_of = date.fromisoformat(truth["generator"]["as_of"])
        return clv.clv(backend, as_of), clv.return_rate(backend, as_of), truth
    finally:
        con.close()


class TestPlantedTruth:
    """The bundled sample (5,000 customers) plants BG/NBD r 0.75, α 6, a 1, b 3 per week and Gamma-Gamma p 6, q 3.8,
    γ 30 (``crm_core.sample``).

    Tolerance: three standard errors (sampling noise) plus an allowance for what makes the generator not a pure
    BG/NBD process: campaign conversions add orders and a late delivery ends 15% of customers. Those shift the
    maximum-likelihood estimates themselves: on 1,000,000 generated customers (standard errors < 1%) the fit lands
    at r +3%, α +7%, a +12%, b +11%; so each BG/NBD parameter may differ by 12% + 3 SE. The means the planted
    process pins down are tighter: E[λ] = r/α = 0.125 per week within 5% and E[p] = a/(a+b) = 0.25 within 0.02.
    Spend: returns (3.3% of purchase value) scale every spend down by the same share, so γ and the population mean
    are compared with the planted values × (1 − return rate); p and q are scale-free.
    """

    def test_bgnbd(self, result):
        res, _, truth = result
        planted = {k: truth["purchases"][k] for k in ("r", "alpha", "a", "b")}
        est, se = res.bgnbd.params_, res.bgnbd.standard_errors_
        for name, value in planted.items():
            assert abs(est[name] - value) <= 0.12 * value + 3 * se[name], name
        assert est["r"] / est["alpha"] == pytest.approx(0.125, rel=0.05)
        assert est["a"] / (est["a"] + est["b"]) == pytest.approx(0.25, abs=0.02)

    def test_gamma_gamma(self, result):
        res, rate, truth = result
        gg, se = res.gamma_gamma.params_, res.gamma_gamma.standard_errors_
        planted = {"p": truth["spend"]["p"], "q": truth["spend"]["q"], "gamma": truth["spend"]["gamma"] * (1 - rate)}
        for name, value in planted.items():
            assert abs(gg[name] - value) <= 3 * se[name], name
        assert 0.02 < rate < 0.05
        assert res.population_mean_spend == pytest.approx(truth["spend"]["population_mean_spend"] * (1 - rate),
                                                          rel=0.05)

    def test_p_alive_ranks_the_living_first(self, result):
        res, _, truth = result
        t = pd.DataFrame({"customer_id": truth["customers"]["customer_id"], "is_alive": truth["customers"]["is_alive"]})
        both = res.customers.merge(t, on="customer_id")
        assert len(both) > 4900
        assert roc_auc_score(both.is_alive, both.p_alive) > 0.85  # 0.91 on the bundled sample

    def test_no_warnings_and_sane_values(self, result):
        res = result[0]
        assert res.warnings == ()
        df = res.customers
        assert df.clv.notna().all() and (df.clv >= 0).all()
        assert df.p_alive.between(0, 1).all()

    def test_calibration_holdout_on_the_sample(self, sample_store):
        con = store.connect(sample_store)
        try:
            cal = clv.calibration_holdout(store.ibis_backend(con), date(2025, 12, 31), date(2026, 6, 30))
        finally:
            con.close()
        # six months of holdout: the model fitted on the first 30 months predicts the total within 10%
        assert cal.total_predicted == pytest.approx(cal.total_actual, rel=0.10)
        assert cal.frame.customers.sum() == cal.n_customers
