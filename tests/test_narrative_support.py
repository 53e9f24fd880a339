"""The sentences under the Support page's charts: small frames shaped like the core's results, exact sentences.

Each frame holds only the columns the reading uses, with numbers chosen so the arithmetic is checkable on paper
(and clear of rounding ties).
"""

from datetime import date

import numpy as np
import pandas as pd
import pytest

from crm_core import narrative
from crm_core.support import AGE_BANDS, Backlog

NAN = np.nan
MONTHS = pd.to_datetime(["2026-04-01", "2026-05-01", "2026-06-01"])


# --------------------------------------------------------------------------------------------- ticket KPIs
def _kpis(**values) -> pd.DataFrame:
    row = {"tickets": 40, "median_first_response_hours": 3.26, "breach_rate": 0.25, "first_response_breach_rate": 0.1,
           "resolution_breach_rate": 0.2, "open_tickets": 5, "csat_mean": 4.13, "csat_responses": 16,
           "ticket_cost": 180.0, "cost_per_ticket": 4.5}
    return pd.DataFrame([{**row, **values}])


class TestSupportReading:
    def test_reads_every_card(self):
        assert narrative.support_reading(_kpis()) == (
            "40 tickets were opened in the period; half got a first reply within 3.3 hours; 25.0% missed an SLA "
            "target (first reply 10.0%, resolution 20.0%) and 5 are still open. Average CSAT 4.13 from 16 ratings; "
            "handling cost 180 (4.50 a ticket).")

    def test_nothing_answered_or_rated_yet(self):
        k = _kpis(tickets=3, median_first_response_hours=NAN, breach_rate=NAN, open_tickets=3, csat_mean=NAN,
                  csat_responses=0, ticket_cost=12.0, cost_per_ticket=4.0)
        assert narrative.support_reading(k) == (
            "3 tickets were opened in the period and 3 are still open. No ratings yet; handling cost 12.00 "
            "(4.00 a ticket).")

    def test_one_ticket_one_rating(self):
        k = _kpis(tickets=1, median_first_response_hours=0.5, breach_rate=0.0, first_response_breach_rate=0.0,
                  resolution_breach_rate=0.0, open_tickets=0, csat_mean=5.0, csat_responses=1, ticket_cost=3.0,
                  cost_per_ticket=3.0)
        assert narrative.support_reading(k) == (
            "1 ticket was opened in the period; half got a first reply within 0.5 hours; 0.0% missed an SLA target "
            "(first reply 0.0%, resolution 0.0%) and 0 are still open. Average CSAT 5.00 from 1 rating; handling "
            "cost 3.00 (3.00 a ticket).")

    def test_no_tickets(self):
        assert narrative.support_reading(_kpis(tickets=0)) == (
            "No support tickets were opened in this period; widen the date range or import tickets.")


class TestTicketTrendReading:
    def test_peak_and_breach_rate_path(self):
        trend = pd.DataFrame({"month": MONTHS, "tickets": [10, 30, 20], "breach_rate": [0.1, 0.5, 0.2]})
        assert narrative.ticket_trend_reading(trend) == (
            "Tickets peaked in May 2026 at 30; the SLA breach rate went from 10.0% in Apr 2026 to 20.0% in Jun 2026, "
            "highest in May 2026 (50.0%).")

    def test_months_without_a_rate_are_skipped(self):
        # April has no ticket, so no rate; the highest rate is the last month's, so it is not repeated
        trend = pd.DataFrame({"month": MONTHS, "tickets": [0, 5, 6], "breach_rate": [NAN, 0.3, 0.4]})
        assert narrative.ticket_trend_reading(trend) == (
            "Tickets peaked in Jun 2026 at 6; the SLA breach rate went from 30.0% in May 2026 to 40.0% in Jun 2026.")

    def test_no_tickets(self):
        trend = pd.DataFrame({"month": MONTHS, "tickets": [0, 0, 0], "breach_rate": [NAN] * 3})
        assert narrative.ticket_trend_reading(trend) == "No tickets in this range."


class TestBreakdownReading:
    CHANNELS = pd.DataFrame({"channel": ["email", "phone", "chat"], "tickets": [20, 15, 5],
                             "breach_rate": [0.5, 0.2, 0.8], "median_first_response_hours": [10.0, 1.0, 2.0]})

    def test_small_groups_are_left_out(self):
        # chat (5 tickets) has the highest rate but is below 10 tickets; email and phone remain
        assert narrative.breakdown_reading(self.CHANNELS, "channel") == (
            "Among the channels with 10 or more tickets, email has the highest SLA breach rate (50.0% of 20 tickets) "
            "and phone the lowest (20.0% of 15); email is also slowest to reply (median 10.0 hours).")

    def test_every_group_counts_when_large_enough(self):
        assert narrative.breakdown_reading(self.CHANNELS, "channel", min_tickets=5) == (
            "By channel, chat has the highest SLA breach rate (80.0% of 5 tickets) and phone the lowest (20.0% of "
            "15); email is slowest to reply (median 10.0 hours).")

    def test_one_group(self):
        one = pd.DataFrame({"priority": ["normal"], "tickets": [12], "breach_rate": [0.3],
                            "median_first_response_hours": [NAN]})
        assert narrative.breakdown_reading(one, "priority") == (
            "Only one priority, normal, has tickets with a known SLA outcome: breach rate 30.0% of 12 tickets.")
        assert narrative.breakdown_reading(one.assign(tickets=[1], breach_rate=[1.0]), "priority") == (
            "Only one priority, normal, has tickets with a known SLA outcome: breach rate 100.0% of 1 ticket.")

    def test_no_known_outcome(self):
        pending = pd.DataFrame({"agent": ["Ann", "Bo"], "tickets": [2, 1], "breach_rate": [NAN, NAN],
                                "median_first_response_hours": [NAN, NAN]})
        assert narrative.breakdown_reading(pending, "agent") == "No agent has tickets with a known SLA outcome yet."


def _backlog(open_by_band: list[int], overdue: list[int], waiting: list[int], oldest: list[float]) -> Backlog:
    total = sum(open_by_band)
    by_age = pd.DataFrame({"age_band": [label for label, _, _ in AGE_BANDS], "open_tickets": open_by_band,
                           "share_of_open": [n / total if total else 0.0 for n in open_by_band],
                           "awaiting_first_response": waiting, "first_response_breached": [0] * 5,
                           "resolution_breached": overdue})
    by_priority = pd.DataFrame({"priority": ["urgent", "high", "normal", "low"], "oldest_age_days": oldest})
    return Backlog(date(2026, 6, 30), total, by_age, by_priority, pd.DataFrame())


class TestBacklogReading:
    def test_most_in_one_band(self):
        # 10 open: 7 of them (70%) 7-30 days old; 6 past the resolution target; 2 unanswered; oldest 12.4 days
        b = _backlog([2, 1, 0, 7, 0], [0, 0, 0, 6, 0], [2, 0, 0, 0, 0], [NAN, 12.4, 3.0, NAN])
        assert narrative.backlog_reading(b) == (
            "10 tickets were open at the end of 30 Jun 2026: 6 past their resolution target and 2 still without a "
            "first reply; most have waited 7-30 days (7, 70%), the oldest 12 days.")

    def test_largest_group_under_half(self):
        b = _backlog([4, 3, 3, 0, 0], [0, 1, 2, 0, 0], [1, 0, 0, 0, 0], [0.5, 4.2, NAN, NAN])
        assert narrative.backlog_reading(b) == (
            "10 tickets were open at the end of 30 Jun 2026: 3 past their resolution target and 1 still without a "
            "first reply; the largest group has waited 0-1 days (4, 40%), the oldest 4 days.")

    def test_nothing_open(self):
        b = _backlog([0] * 5, [0] * 5, [0] * 5, [NAN] * 4)
        assert narrative.backlog_reading(b) == "No ticket was open at the end of 30 Jun 2026."


class TestCsatReadings:
    def test_distribution(self):
        # 20 ratings: 4s and 5s 10 + 6 = 16 (80%); 1s and 2s 1 + 1 = 2 (10%); the mode is 4 with 10 (50%)
        d = pd.DataFrame({"rating": [1, 2, 3, 4, 5], "responses": [1, 1, 2, 10, 6]})
        assert narrative.csat_distribution_reading(d) == (
            "80% of the 20 ratings are 4 or 5 and 10% are 1 or 2; the most common rating is 4 (50%).")

    def test_no_ratings(self):
        d = pd.DataFrame({"rating": [1, 2, 3, 4, 5], "responses": [0] * 5})
        assert narrative.csat_distribution_reading(d) == "No ticket has a satisfaction rating in this period."

    def test_breached_against_met(self):
        # 4.20 - 3.00 = 1.20 points
        b = pd.DataFrame({"first_response_breach": ["Met", "Breached", "Pending"], "tickets": [50, 20, 3],
                          "csat_responses": [30, 10, 0], "csat_mean": [4.2, 3.0, NAN]})
        assert narrative.csat_reading(b) == (
            "Tickets whose first reply met the SLA were rated 4.20 on average (30 ratings), those that missed it "
            "3.00 (10): 1.20 points lower.")

    def test_no_breached_ratings(self):
        b = pd.DataFrame({"first_response_breach": ["Met"], "tickets": [5], "csat_responses": [3],
                          "csat_mean": [4.0]})
        assert narrative.csat_reading(b) == (
            "Too few rated tickets to compare first replies that met the SLA with those that missed it.")


class TestComplaintReadings:
    def test_by_month(self):
        # 2 + 6 + 0 = 8 complaints, 3 + 1 + 2 = 6 compliments; May: 6 of 40 tickets = 15.0%
        m = pd.DataFrame({"month": MONTHS, "tickets": [50, 40, 10], "complaints": [2, 6, 0],
                          "compliments": [3, 1, 2], "complaint_share": [0.04, 0.15, 0.0]})
        assert narrative.complaints_reading(m) == (
            "8 complaints and 6 compliments in 3 months; complaints peaked in May 2026 at 6 (15.0% of that month's "
            "tickets).")

    def test_no_complaints(self):
        m = pd.DataFrame({"month": MONTHS[:1], "tickets": [5], "complaints": [0], "compliments": [1],
                          "complaint_share": [0.0]})
        assert narrative.complaints_reading(m) == "0 complaints and 1 compliment in 1 month."

    def test_by_category(self):
        # 6 of 6 + 2 = 8 complaints = 75%
        c = pd.DataFrame({"category": ["delivery", "complaint - billing", "complaint - delivery"],
                          "complaints": [0, 2, 6]})
        assert narrative.complaint_category_reading(c) == (
            "'complaint - delivery' holds the most complaints (6 of 8, 75%); then 'complaint - billing' (2).")

    def test_one_category(self):
        c = pd.DataFrame({"category": ["complaint", "delivery"], "complaints": [30, 0]})
        assert narrative.complaint_category_reading(c) == "All 30 complaints are filed under 'complaint'."

    def test_no_complaint_category(self):
        c = pd.DataFrame({"category": ["delivery"], "complaints": [0]})
        assert narrative.complaint_category_reading(c) == (
            "No complaints in this range (a ticket is a complaint when its category contains 'complaint').")


# --------------------------------------------------------------------------------------------- NPS
def _nps_row(responses, promoters, detractors, low, high) -> pd.DataFrame:
    return pd.DataFrame({"responses": [responses], "promoter_share": [promoters / responses],
                         "detractor_share": [detractors / responses],
                         "nps": [100 * (promoters - detractors) / responses], "nps_low": [low], "nps_high": [high]})


class TestNpsReadings:
    def test_score_and_interval(self):
        # 25 promoters and 10 detractors of 50: NPS 100 × (0.5 - 0.2) = 30; Var = (0.5 + 0.2 - 0.3²) / 50 = 0.0122,
        # half width 1.96 × 100 × √0.0122 = 21.65 → 8.35 to 51.65
        assert narrative.nps_reading(_nps_row(50, 25, 10, 8.35, 51.65)) == (
            "NPS +30 (95% interval +8 to +52) from 50 answers: 50% promoters, 20% detractors.")

    def test_few_answers(self):
        assert narrative.nps_reading(_nps_row(20, 5, 9, -56.2, 16.2)) == (
            "NPS -20 (95% interval -56 to +16) from 20 answers: 25% promoters, 45% detractors. Fewer than 30 "
            "answers: read the interval as rough.")

    def test_one_answer(self):
        assert narrative.nps_reading(_nps_row(1, 0, 0, 0.0, 0.0)) == (
            "NPS 0 (95% interval 0 to 0) from 1 answer: 0% promoters, 0% detractors. Fewer than 30 answers: read "
            "the interval as rough.")

    def test_no_answers(self):
        row = pd.DataFrame({"responses": [0], "promoter_share": [NAN], "detractor_share": [NAN], "nps": [NAN],
                            "nps_low": [NAN], "nps_high": [NAN]})
        assert narrative.nps_reading(row) == (
            "No survey answers with a score in this period; import surveys to see the NPS.")

    @pytest.mark.parametrize(
        ("june", "ending"),
        [((34.0, 18.0, 50.0), "their 95% intervals overlap: no clear change."),
         ((45.0, 41.0, 49.0), "their 95% intervals do not overlap: a clear rise."),
         ((-20.0, -35.0, -5.0), "their 95% intervals do not overlap: a clear fall.")],
        ids=["overlap", "rise", "fall"],
    )
    def test_by_month(self, june, ending):
        # April +25 [10, 40]; May has no answers and is skipped
        m = pd.DataFrame({"month": MONTHS, "responses": [80, 0, 67], "nps": [25.0, NAN, june[0]],
                          "nps_low": [10.0, NAN, june[1]], "nps_high": [40.0, NAN, june[2]]})
        assert narrative.nps_trend_reading(m) == (
            f"NPS went from +25 in Apr 2026 to {june[0]:+.0f} in Jun 2026; {ending}")

    def test_one_month(self):
        m = pd.DataFrame({"month": MONTHS[:1], "responses": [12], "nps": [25.0], "nps_low": [0.0],
                          "nps_high": [50.0]})
        assert narrative.nps_trend_reading(m) == "All answers fall in Apr 2026: NPS +25."
        assert narrative.nps_trend_reading(m.assign(nps=[-0.4])) == "All answers fall in Apr 2026: NPS 0."

    def test_by_segment(self):
        # Lost (3 answers) is below 10 answers and left out despite its +80
        s = pd.DataFrame({"segment": ["Champions", "Loyal", "Lost"], "responses": [40, 12, 3],
                          "nps": [30.0, -5.0, 80.0]})
        assert narrative.nps_segment_reading(s) == (
            "Among segments with at least 10 answers, Champions score highest (NPS +30, 40 answers) and Loyal "
            "lowest (-5, 12).")
        assert narrative.nps_segment_reading(s.iloc[[0, 2]]) == (
            "Only Champions has 10 answers or more: NPS +30 (40 answers).")
        assert narrative.nps_segment_reading(s.iloc[[2]]) == (
            "No segment has 10 answers or more; the segment scores are too uncertain to compare.")

    def test_themes(self):
        t = pd.DataFrame({"group": ["promoter", "promoter", "detractor"], "rank": [1, 2, 1],
                          "term": ["great", "good value", "late"], "comments": [24, 17, 7],
                          "share_of_group": [0.37, 0.26, 0.35]})
        assert narrative.themes_reading(t) == (
            "The most distinctive words: detractors 'late' (7 comments, 35% of theirs), promoters 'great' "
            "(24 comments, 37% of theirs).")
        assert narrative.themes_reading(t.iloc[0:0]) == "Too few comments to find themes."
        tickets = pd.DataFrame({"group": ["satisfied", "dissatisfied"], "rank": [1, 1],
                                "term": ["great service", "arrived damaged"], "comments": [18, 6],
                                "share_of_group": [0.018, 0.079]})
        assert narrative.themes_reading(tickets) == (
            "The most distinctive words: dissatisfied tickets 'arrived damaged' (6 comments, 8% of theirs), "
            "satisfied tickets 'great service' (18 comments, 2% of theirs).")


# --------------------------------------------------------------------------------------------- service × value
class TestServiceReadings:
    def test_tiers(self):
        # Silver has no ticket with a known outcome; the two group rows are not tiers
        t = pd.DataFrame({
            "value_tier": ["Platinum", "Gold", "Silver", "Bronze", "Top tiers", "Other tiers"],
            "is_group": [False, False, False, False, True, True],
            "sla_known_tickets": [10, 20, 0, 30, 30, 30],
            "breach_rate": [0.2, 0.3, NAN, 0.4, 0.2667, 0.4],
            "tickets_per_customer": [0.5, 0.25, 0.0, 0.3, 0.9, 0.9],
        })
        assert narrative.tier_service_reading(t) == (
            "Bronze customers' tickets breach the SLA most often (40.0% of 30) and Platinum customers' least "
            "(20.0% of 10); Platinum customers open the most tickets (0.50 each).")
        assert narrative.tier_service_reading(t.iloc[[2, 4, 5]]) == (
            "No tickets with a known SLA outcome from customers with a value tier in this period.")

    CHANNELS = pd.DataFrame({
        "channel": ["email", "phone", "chat"], "breach_rate": [0.6, 0.3, 0.2], "breach_rate_ci_low": [0.45, 0.2, 0.1],
        "breach_rate_ci_high": [0.73, 0.4, 0.3], "share_of_tickets": [0.4, 0.3, 0.3],
        "share_of_breaches": [0.6, 0.25, 0.15], "is_breach_hotspot": [True, False, False],
    })

    def test_hotspot(self):
        assert narrative.channel_breach_reading(self.CHANNELS) == (
            "Email breaches the SLA on 60.0% of its tickets (95% CI 45.0% to 73.0%) and holds 60% of all breaches "
            "from 40% of the tickets; the other channels breach 20.0% to 30.0%.")
        assert narrative.channel_breach_reading(self.CHANNELS.iloc[:2]).endswith(
            "from 40% of the tickets; phone breaches 30.0%.")

    def test_no_hotspot(self):
        even = self.CHANNELS.iloc[1:].assign(breach_rate=[0.3, 0.3], is_breach_hotspot=[False, False])
        assert narrative.channel_breach_reading(even) == (
            "Phone has the highest breach rate (30.0%), but no channel has more than its share of the breaches.")
        assert narrative.channel_breach_reading(even.iloc[0:0]) == (
            "No tickets with a known SLA outcome in this period.")

    def test_action_list(self):
        a = pd.DataFrame({
            "urgency": pd.array([1, 1, 4], dtype="Int64"), "customer_id": ["C1", "C2", "C3"],
            "name": ["Ann Lee", None, "Bo Ng"], "value_tier": ["Platinum", "Gold", "Gold"],
            "profit": [518.2, 100.0, 50.0],
            "suggested_action": ["Platinum customer, breached ticket open: account manager calls today.",
                                 "High value, breached ticket open: call today and resolve it.",
                                 "High value, SLA breached recently: call to apologise and check it is solved."],
        })
        assert narrative.action_list_reading(a) == (
            "3 high-value customers have an open or recently breached ticket, 2 at the most urgent level. First: "
            "Ann Lee (C1), Platinum, profit 518 — Platinum customer, breached ticket open: account manager calls "
            "today.")
        assert narrative.action_list_reading(a.iloc[[1]]) == (
            "1 high-value customer has an open or recently breached ticket, 1 at the most urgent level. First: C2, "
            "Gold, profit 100 — High value, breached ticket open: call today and resolve it.")
        assert narrative.action_list_reading(a.iloc[0:0]) == (
            "No high-value customer has an open or recently breached ticket: nothing to chase.")


# --------------------------------------------------------------------------------------------- channels
class TestChannelReadings:
    def test_contact_points(self):
        p = pd.DataFrame({"touchpoint": ["orders", "orders", "support", "support"],
                          "channel": ["web", "store", "email", "phone"], "events": [60, 40, 30, 20],
                          "share_of_events": [0.6, 0.4, 0.6, 0.4], "cost_per_event": [NAN, NAN, 4.0, 6.0]})
        assert narrative.contact_points_reading(p) == (
            "The main channel for orders is web (60%), for tickets email (60%); phone tickets cost the most per "
            "contact (6.00).")
        assert narrative.contact_points_reading(p.iloc[0:0]) == (
            "No orders, tickets, campaign messages or survey answers in this period.")

    def test_channel_usage(self):
        # support: email 6 + 2 + 1 = 9, phone 4 + 8 = 12 events → phone carries 12 / 21 = 57%;
        # of the segments with 10+ events (Champions 10, Lost 10; New has 1) Lost uses phone most (80%)
        u = pd.DataFrame({
            "segment": ["Champions", "Champions", "New", "Lost", "Lost", "Champions"],
            "touchpoint": ["support", "support", "support", "support", "support", "orders"],
            "channel": ["email", "phone", "email", "email", "phone", "web"],
            "events": [6, 4, 1, 2, 8, 50], "share_of_events": [0.6, 0.4, 1.0, 0.2, 0.8, 1.0],
        })
        assert narrative.channel_usage_reading(u, "support") == (
            "Phone carries 57% of tickets; among segments with 10 or more, Lost use it most (80%) and Champions "
            "least (40%).")
        assert narrative.channel_usage_reading(u, "orders") == "Web carries 100% of orders."
        assert narrative.channel_usage_reading(u, "campaigns") == "No campaign messages in this period."
