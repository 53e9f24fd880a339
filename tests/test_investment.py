"""Tests for crm_core.investment: hand-computed cash flows, NPV, payback and ROI on tiny cases, the discounting
against the closed-form annuity, each lever alone, the sensitivity table, validation messages, and the baselines of
the sample store against the modules they reuse.

The tiny baseline (``BASE``): 1,200 active customers, annual churn 25%, profit 120 per customer per year (10 a
month), 12,000 campaign contacts a year converting at 5% with 50 profit per conversion, support cost 12,000 a year
(1,000 a month), revenue 120,000 a year (10,000 a month) at a 40% gross margin.
"""

import math
from datetime import date, timedelta

import numpy as np
import pandas as pd
import pytest

from crm_core import store
from crm_core.campaigns import campaign_summary
from crm_core.churn import churn_status, churn_summary
from crm_core.investment import (
    CASHFLOW_LABELS,
    Baselines,
    Improvements,
    Programme,
    baselines,
    investment_case,
    reading,
    sensitivity,
)
from crm_core.support import ticket_kpis
from crm_core.value import customer_value, value_totals

BASE = Baselines(active_customers=1200, annual_churn_rate=0.25, profit_per_customer_year=120.0,
                 campaign_contacts_year=12000.0, conversion_rate=0.05, profit_per_conversion=50.0,
                 support_cost_year=12000.0, revenue_year=120000.0, gross_margin_rate=0.4)
SUPPORT_10 = Improvements(support_cost_pct=10)  # 1,000 a month × 10% = 100 a month


def annuity(rate_annual: float, months: int) -> float:
    """Present value of 1 paid at the end of each of ``months`` months: (1 − (1 + i)^−n) ÷ i."""
    i = (1 + rate_annual) ** (1 / 12) - 1
    return (1 - (1 + i) ** -months) / i


class TestTinyCase:
    """No discounting, no ramp: one-off 1,200 at month 0, benefit 100 a month for 24 months."""

    @pytest.fixture
    def case(self):
        return investment_case(BASE, Programme(1200, 0, horizon_months=24, discount_rate_annual=0), SUPPORT_10)

    def test_totals(self, case):
        # benefits 24 × 100 = 2,400; costs 1,200; NPV = 2,400 − 1,200 = 1,200; ROI = (2,400 − 1,200) ÷ 1,200 = 1
        assert case.incremental_profit == pytest.approx(2400)
        assert case.total_cost == pytest.approx(1200)
        assert case.npv == pytest.approx(1200)
        assert case.roi == pytest.approx(1.0)
        assert case.net_profit == pytest.approx(1200)

    def test_payback_is_cost_over_monthly_benefit(self, case):
        # cumulative at month m = −1,200 + 100 m ≥ 0 first at m = 1,200 ÷ 100 = 12
        assert case.payback_month == 12
        cf = case.cashflow
        assert cf.loc[cf.month == 11, "cumulative_discounted_net"].item() == pytest.approx(-100)
        assert cf.loc[cf.month == 12, "cumulative_discounted_net"].item() == pytest.approx(0)

    def test_cashflow_frame(self, case):
        cf = case.cashflow
        assert list(cf.columns) == list(CASHFLOW_LABELS)
        assert cf["month"].tolist() == list(range(25))
        assert cf.loc[0, ["benefit", "cost", "net"]].tolist() == [0, 1200, -1200]
        assert (cf.loc[1:, "benefit_support"] == 100).all()
        assert (cf["discount_factor"] == 1).all()

    def test_yearly_cost_delays_payback(self):
        # yearly 600 → 50 a month; net 100 − 50 = 50 a month; payback at 1,200 ÷ 50 = month 24;
        # NPV = 24 × 50 − 1,200 = 0; ROI = (2,400 − 2,400) ÷ 2,400 = 0
        case = investment_case(BASE, Programme(1200, 600, horizon_months=24, discount_rate_annual=0), SUPPORT_10)
        assert case.payback_month == 24
        assert case.npv == pytest.approx(0, abs=1e-9)
        assert case.roi == pytest.approx(0, abs=1e-12)
        # one month shorter: never paid back
        short = investment_case(BASE, Programme(1200, 600, horizon_months=23, discount_rate_annual=0), SUPPORT_10)
        assert short.payback_month is None
        assert short.npv == pytest.approx(-50)

    def test_formulas_show_the_numbers(self, case):
        names = [f.name for f in case.formulas]
        assert {"Churn benefit", "Conversion benefit", "Support benefit", "Order value benefit", "NPV", "ROI",
                "Payback month", "Monthly discount rate", "Customers kept per month"} <= set(names)
        by_name = {f.name: f for f in case.formulas}
        assert by_name["Support benefit"].example == "12,000.00 ÷ 12 × 10% × 1 = 100.00 per month"
        assert by_name["ROI"].example == "(2,400.00 − 1,200.00) ÷ 1,200.00 = 100.0%"
        assert by_name["Payback month"].example == "month 12"
        assert all(isinstance(f, tuple) and len(f) == 3 for f in case.formulas)

    def test_reading(self, case):
        assert reading(case) == ("Over 24 months the programme has an NPV of 1,200, ROI 100%, and pays back in "
                                 "month 12; cheaper support brings 100% of the benefit.")


class TestDiscounting:
    def test_npv_matches_the_annuity(self):
        # 100 a month for 36 months at 12% a year, one-off 2,400: NPV = 100 × a(36) − 2,400
        p = Programme(2400, 0, horizon_months=36, discount_rate_annual=0.12)
        case = investment_case(BASE, p, SUPPORT_10)
        assert case.npv == pytest.approx(100 * annuity(0.12, 36) - 2400, rel=1e-12)
        assert case.pv_benefits == pytest.approx(100 * annuity(0.12, 36), rel=1e-12)
        # i = 1.12^(1/12) − 1 = 0.0094888; month 12 is discounted by exactly 1 ÷ 1.12
        assert case.cashflow.loc[12, "discount_factor"] == pytest.approx(1 / 1.12, rel=1e-12)

    def test_payback_matches_the_annuity(self):
        # smallest m with 100 × a(m) ≥ 2,400: m ≥ −ln(1 − 24 i) ÷ ln(1 + i) = 27.37 → 28
        i = 1.12 ** (1 / 12) - 1
        expected = math.ceil(-math.log(1 - 24 * i) / math.log(1 + i))
        assert expected == 28
        case = investment_case(BASE, Programme(2400, 0, horizon_months=36, discount_rate_annual=0.12), SUPPORT_10)
        assert case.payback_month == expected

    def test_zero_improvements_cost_only(self):
        # NPV = −(one-off 1,000 + 100 a month × a(12) at 12%); nothing pays back; ROI = (0 − 2,200) ÷ 2,200 = −1
        p = Programme(1000, 1200, horizon_months=12, discount_rate_annual=0.12)
        case = investment_case(BASE, p, Improvements())
        assert case.npv == pytest.approx(-(1000 + 100 * annuity(0.12, 12)), rel=1e-12)
        assert case.npv == pytest.approx(-case.pv_costs)
        assert case.payback_month is None
        assert case.roi == pytest.approx(-1.0)
        assert case.incremental_profit == 0
        assert "no improvement" in reading(case)


class TestRampUp:
    def test_linear_ramp(self):
        # R = 4: shares 1/4, 2/4, 3/4, 1, 1, 1 → support benefits 25 + 50 + 75 + 100 + 100 + 100 = 450
        p = Programme(0, 0, horizon_months=6, discount_rate_annual=0, ramp_up_months=4)
        case = investment_case(BASE, p, SUPPORT_10)
        assert case.cashflow["ramp_factor"].tolist() == [0, 0.25, 0.5, 0.75, 1, 1, 1]
        assert case.cashflow["benefit_support"].tolist() == pytest.approx([0, 25, 50, 75, 100, 100, 100])
        assert case.incremental_profit == pytest.approx(450)
        assert case.roi is None  # no costs: ROI undefined

    def test_ramp_longer_than_horizon(self):
        # R = 10, H = 2: shares 0.1, 0.2 → 10 + 20 = 30
        p = Programme(0, 0, horizon_months=2, discount_rate_annual=0, ramp_up_months=10)
        assert investment_case(BASE, p, SUPPORT_10).incremental_profit == pytest.approx(30)


class TestLevers:
    """Each lever alone, no discounting, no ramp."""

    P3 = Programme(0, 0, horizon_months=3, discount_rate_annual=0)

    def test_churn(self):
        # kept per month = 1,200 × 2% ÷ 12 = 2; s = 0.75^(1/12) = e^(ln 0.75 ÷ 12) = 0.976312
        # stock: 2, 2s + 2, 2s² + 2s + 2; each kept customer earns 120 ÷ 12 = 10 a month
        # total = 10 × (6 + 4s + 2s²) = 10 × (6 + 3.905249 + 1.906370) = 118.1162
        s = 0.75 ** (1 / 12)
        case = investment_case(BASE, self.P3, Improvements(churn_pts=2))
        cf = case.cashflow
        assert cf["customers_kept"].tolist() == pytest.approx([0, 2, 2 * s + 2, 2 * s * s + 2 * s + 2])
        assert cf["benefit_churn"].tolist() == pytest.approx([0, 20, 20 * (1 + s), 20 * (1 + s + s * s)])
        assert case.incremental_profit == pytest.approx(10 * (6 + 4 * s + 2 * s * s))
        assert case.incremental_profit == pytest.approx(118.1162, abs=1e-4)
        assert case.benefit_by_lever == pytest.approx({"churn": case.incremental_profit, "conversion": 0,
                                                       "support": 0, "aov": 0})
        example = {f.name: f.example for f in case.formulas}["Customers kept per month"]
        assert example == "1,200 × 2% ÷ 12 × 1 = 2.00 customers"

    def test_churn_without_base_churn_keeps_everyone(self):
        # churn 2%, reduction 2 pts: s = 0.98^(1/12); H = 1: stock 2 → 20
        b = Baselines(active_customers=1200, annual_churn_rate=0.02, profit_per_customer_year=120.0)
        case = investment_case(b, Programme(0, 0, horizon_months=1, discount_rate_annual=0),
                               Improvements(churn_pts=2))
        assert case.incremental_profit == pytest.approx(20)

    def test_conversion(self):
        # 12,000 ÷ 12 = 1,000 contacts a month × 1 pt = 10 conversions × 50 = 500 a month; 3 months = 1,500
        case = investment_case(BASE, self.P3, Improvements(conversion_pts=1))
        assert case.cashflow["benefit_conversion"].tolist() == pytest.approx([0, 500, 500, 500])
        assert case.incremental_profit == pytest.approx(1500)

    def test_support(self):
        # 1,000 a month × 10% = 100; 3 months = 300
        assert investment_case(BASE, self.P3, SUPPORT_10).incremental_profit == pytest.approx(300)

    def test_aov(self):
        # 10,000 a month × 5% × 40% margin = 200; 3 months = 600
        case = investment_case(BASE, self.P3, Improvements(aov_pct=5))
        assert case.cashflow["benefit_aov"].tolist() == pytest.approx([0, 200, 200, 200])
        assert case.incremental_profit == pytest.approx(600)

    def test_levers_add_up(self):
        all_four = investment_case(BASE, self.P3, Improvements(2, 1, 10, 5))
        alone = sum(investment_case(BASE, self.P3, imp).incremental_profit
                    for imp in (Improvements(churn_pts=2), Improvements(conversion_pts=1), SUPPORT_10,
                                Improvements(aov_pct=5)))
        assert all_four.incremental_profit == pytest.approx(alone)
        assert all_four.incremental_profit == pytest.approx(118.1162 + 1500 + 300 + 600, abs=1e-4)


class TestSensitivity:
    P = Programme(1200, 600, horizon_months=24, discount_rate_annual=0.1)
    IMP = Improvements(churn_pts=2, conversion_pts=1, support_cost_pct=10)

    def test_rows_sorted_by_range(self):
        table = sensitivity(BASE, self.P, self.IMP)
        assert table["npv_range"].tolist() == sorted(table["npv_range"], reverse=True)
        # aov_pct is 0: it cannot move and has no row
        assert set(table["input"]) == {"churn_pts", "conversion_pts", "support_cost_pct", "yearly_cost",
                                       "one_off_cost", "discount_rate_annual", "profit_per_customer_year",
                                       "horizon_months"}
        base = investment_case(BASE, self.P, self.IMP).npv
        assert (table["base_npv"] == base).all()

    def test_one_off_cost_row(self):
        # the one-off cost is paid undiscounted in month 0: 1,200 × (1 ± 0.25) moves the NPV by ∓300
        table = sensitivity(BASE, self.P, self.IMP).set_index("input")
        base = investment_case(BASE, self.P, self.IMP).npv
        row = table.loc["one_off_cost"]
        assert (row.low, row.high) == (900, 1500)
        assert row.npv_low == pytest.approx(base + 300)
        assert row.npv_high == pytest.approx(base - 300)
        assert row.npv_range == pytest.approx(600)
        # yearly cost 600 ± 150 → ± 12.5 a month over 24 months: range 2 × 12.5 × a(24) at 10%
        assert table.loc["yearly_cost", "npv_range"] == pytest.approx(25 * annuity(0.1, 24))
        # horizon 24 × 0.75 = 18 and 24 × 1.25 = 30 months
        assert (table.loc["horizon_months", "low"], table.loc["horizon_months", "high"]) == (18, 30)

    def test_no_swing_reproduces_the_base(self):
        table = sensitivity(BASE, self.P, self.IMP, swing=0)
        base = investment_case(BASE, self.P, self.IMP).npv
        assert np.allclose(table["npv_low"], base, rtol=0, atol=1e-9)
        assert np.allclose(table["npv_high"], base, rtol=0, atol=1e-9)
        assert (table["npv_range"].abs() < 1e-9).all()

    def test_churn_swing_is_capped_at_the_churn_rate(self):
        # churn 25%, reduction 24 pts: 24 × 1.25 = 30 pts would exceed it, so the high side uses 25 pts
        table = sensitivity(BASE, self.P, Improvements(churn_pts=24)).set_index("input")
        assert table.loc["churn_pts", "high"] == pytest.approx(25)
        assert table.loc["churn_pts", "low"] == pytest.approx(18)

    def test_bigger_improvement_raises_npv(self):
        table = sensitivity(BASE, self.P, self.IMP).set_index("input")
        for name in ("churn_pts", "conversion_pts", "support_cost_pct", "profit_per_customer_year"):
            assert table.loc[name, "npv_high"] > table.loc[name, "npv_low"], name
        for name in ("one_off_cost", "yearly_cost", "discount_rate_annual"):
            assert table.loc[name, "npv_high"] < table.loc[name, "npv_low"], name


class TestValidation:
    @pytest.mark.parametrize("make, message", [
        (lambda: Improvements(churn_pts=-1), r"Improvements.churn_pts must be 0 or more, got -1"),
        (lambda: Improvements(support_cost_pct=120), r"Improvements.support_cost_pct must be 100 or less"),
        (lambda: Improvements(aov_pct=float("nan")), r"Improvements.aov_pct must be a finite number"),
        (lambda: Programme(-5, 0), r"Programme.one_off_cost must be 0 or more"),
        (lambda: Programme(0, 0, horizon_months=0), r"Programme.horizon_months must be a whole number of at least 1"),
        (lambda: Programme(0, 0, horizon_months=12.5), r"horizon_months must be a whole number"),
        (lambda: Programme(0, 0, discount_rate_annual=8), r"Programme.discount_rate_annual must be 1 or less"),
        (lambda: Programme(0, 0, ramp_up_months=-1), r"ramp_up_months must be a whole number of at least 0"),
    ], ids=["negative-churn", "support-over-100", "nan", "negative-cost", "zero-horizon", "fractional-horizon",
            "rate-as-percent", "negative-ramp"])
    def test_inputs(self, make, message):
        with pytest.raises(ValueError, match=message):
            make()

    def test_churn_reduction_larger_than_churn(self):
        with pytest.raises(ValueError, match=r"churn reduction of 30 pts is larger than the annual churn rate of "
                                             r"25.0%.*at most 25.0 pts"):
            investment_case(BASE, Programme(0, 0), Improvements(churn_pts=30))
        with pytest.raises(ValueError, match="larger than the annual churn rate"):
            sensitivity(BASE, Programme(0, 0), Improvements(churn_pts=30))

    def test_conversion_above_100_percent(self):
        with pytest.raises(ValueError, match=r"lift the conversion rate of 5.0% above 100%.*at most 95.0 pts"):
            investment_case(BASE, Programme(0, 0), Improvements(conversion_pts=96))

    def test_lever_without_data(self):
        bare = Baselines(active_customers=10, annual_churn_rate=0.3, profit_per_customer_year=50)
        with pytest.raises(ValueError, match="no campaign started"):
            investment_case(bare, Programme(0, 0), Improvements(conversion_pts=1))
        with pytest.raises(ValueError, match="has no tickets"):
            investment_case(bare, Programme(0, 0), SUPPORT_10)
        with pytest.raises(ValueError, match="needs revenue"):
            investment_case(bare, Programme(0, 0), Improvements(aov_pct=2))

    def test_swing(self):
        with pytest.raises(ValueError, match="sensitivity.swing must be 1 or less"):
            sensitivity(BASE, Programme(0, 0), SUPPORT_10, swing=2)


AS_OF = date(2026, 6, 30)


@pytest.fixture(scope="module")
def sample(sample_store):
    con = store.connect(sample_store)
    yield store.ibis_backend(con)
    con.close()


@pytest.fixture(scope="module")
def b(sample):
    return baselines(sample, AS_OF)


class TestSampleBaselines:
    """The baselines of the sample store are what the reused modules return."""

    def test_finite_and_sourced(self, b):
        numbers = [getattr(b, name) for name in ("active_customers", "annual_churn_rate", "profit_per_customer_year",
                                                 "campaign_contacts_year", "conversion_rate", "profit_per_conversion",
                                                 "support_cost_year", "revenue_year", "gross_margin_rate",
                                                 "tickets_year", "cost_per_ticket")]
        assert all(math.isfinite(x) and x > 0 for x in numbers)
        assert 0 < b.annual_churn_rate < 1 and 0 < b.conversion_rate < 1 and 0 < b.gross_margin_rate < 1
        assert len(b.sources) == 11 and all(b.sources.values())
        assert b.as_of == AS_OF

    def test_churn(self, sample, b):
        summary = churn_summary(sample, AS_OF)
        assert b.active_customers == summary.customers - summary.churned_customers
        then = churn_status(sample, AS_OF - timedelta(days=365))
        now = churn_status(sample, AS_OF)
        active_then = then.loc[~then.is_churned, ["customer_id"]]
        merged = active_then.merge(now[["customer_id", "is_churned"]], on="customer_id", how="left")
        assert b.annual_churn_rate == pytest.approx(merged.is_churned.mean())

    def test_value(self, sample, b):
        values = customer_value(sample, AS_OF, AS_OF - timedelta(days=364))
        totals = value_totals(values)
        assert b.revenue_year == pytest.approx(totals.revenue)
        assert b.gross_margin_rate == pytest.approx(totals.gross_margin_rate)
        now = churn_status(sample, AS_OF)
        active = set(now.loc[~now.is_churned, "customer_id"])
        profit = values.set_index("customer_id")["profit"].reindex(sorted(active)).fillna(0.0)
        assert b.profit_per_customer_year == pytest.approx(profit.mean())

    def test_campaigns(self, sample, b):
        s = campaign_summary(sample)
        recent = s[(s.start_date > AS_OF - timedelta(days=365)) & (s.start_date <= AS_OF)]
        assert b.campaign_contacts_year == recent.treatment_contacts.sum()
        assert b.conversion_rate == pytest.approx(recent.converted.sum() / recent.treatment_contacts.sum())
        assert b.profit_per_conversion == pytest.approx(
            recent.revenue.sum() / recent.converted.sum() * b.gross_margin_rate)

    def test_support(self, sample, b):
        kpis = ticket_kpis(sample, AS_OF, AS_OF - timedelta(days=364)).iloc[0]
        assert b.tickets_year == kpis.tickets
        assert b.support_cost_year == pytest.approx(kpis.ticket_cost)
        assert b.cost_per_ticket == pytest.approx(kpis.cost_per_ticket)

    def test_region_filter(self, sample, b):
        london = baselines(sample, AS_OF, regions=("London",))
        assert 0 < london.active_customers < b.active_customers
        # campaigns are not filtered: contacts scaled by the region's share of active customers, rates unchanged
        share = london.active_customers / b.active_customers
        assert london.campaign_contacts_year == pytest.approx(b.campaign_contacts_year * share)
        assert london.conversion_rate == pytest.approx(b.conversion_rate)
        assert london.support_cost_year < b.support_cost_year
        assert "scaled" in london.sources["campaign_contacts_year"]

    def test_case_on_the_sample(self, b):
        case = investment_case(b, Programme(20000, 10000, horizon_months=36, discount_rate_annual=0.08,
                                            ramp_up_months=6), Improvements(2, 1, 10, 2))
        assert isinstance(case.cashflow, pd.DataFrame) and len(case.cashflow) == 37
        assert math.isfinite(case.npv)
        assert case.npv == pytest.approx(case.pv_benefits - case.pv_costs)
        assert case.cashflow["cumulative_discounted_net"].iloc[-1] == pytest.approx(case.npv)


def test_empty_store_gives_zero_baselines(con):
    # no orders, tickets or campaigns: every baseline is 0 and only a cost-only case can be built
    b = baselines(store.ibis_backend(con), AS_OF)
    assert (b.active_customers, b.annual_churn_rate, b.profit_per_customer_year, b.campaign_contacts_year,
            b.support_cost_year, b.revenue_year, b.tickets_year) == (0, 0, 0, 0, 0, 0, 0)
    case = investment_case(b, Programme(100, 0, horizon_months=12, discount_rate_annual=0), Improvements())
    assert case.npv == -100 and case.payback_month is None
    with pytest.raises(ValueError, match="larger than the annual churn rate of 0.0%"):
        investment_case(b, Programme(100, 0), Improvements(churn_pts=1))
