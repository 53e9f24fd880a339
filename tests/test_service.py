"""Service × value and contact points: hand-computed tiers, breach rates, CSAT, action list and channel shares on a
small fixture, and the planted slow e-mail channel of the sample."""

import json
import shutil
from datetime import date, datetime

import ibis
import pandas as pd
import pytest
import sqlglot
from ibis.config import Config

from crm_core import service, store, support, value
from crm_core.campaigns import mean_lift, proportion_lift, wilson_interval
from crm_core.sample import SAMPLE_DIR, SLOW_CHANNEL
from crm_core.support import BusinessHours, SlaPolicy, ticket_facts_expr
from crm_core.value import CostRates

AS_OF = date(2024, 3, 31)  # measured at 2024-04-01 00:00
RATES = CostRates(ticket_cost_by_channel={"email": 1.0, "phone": 2.0, "chat": 1.0, "web": 1.0}, default_ticket_cost=1.0,
                  contact_cost_by_channel={"sms": 0.25}, default_contact_cost=0.0, default_margin_rate=0.5)


@pytest.fixture
def backend(con):
    # Ten customers with one purchase each on the same day, so recency ties (R = 1) and the spend ranks decide the
    # RFM segment: A (250 net) and B (200) are "At risk" (FM 3), C-J "Lost"; K has no purchase.
    con.execute("""INSERT INTO customers (customer_id, name, email, region) VALUES
        ('A', 'Ann', 'ann@x.org', 'North'), ('B', 'Bob', 'bob@x.org', 'North'), ('C', 'Cy', 'cy@x.org', 'South'),
        ('D', 'Di', 'di@x.org', 'South'), ('E', 'Ed', 'ed@x.org', 'South'), ('F', 'Flo', 'flo@x.org', 'South'),
        ('G', 'Gus', 'gus@x.org', 'South'), ('H', 'Hal', 'hal@x.org', 'South'), ('I', 'Ida', 'ida@x.org', 'South'),
        ('J', 'Jo', 'jo@x.org', 'South'), ('K', 'Kim', 'kim@x.org', 'South')""")
    con.execute("""INSERT INTO orders (order_id, customer_id, ordered_at, amount, channel, is_return) VALUES
        ('o1', 'A', '2024-01-15 10:00', 300, 'web', false), ('o2', 'A', '2024-02-01 10:00', -50, 'web', true),
        ('o3', 'B', '2024-01-15 10:00', 200, 'store', false), ('o4', 'C', '2024-01-15 10:00', 140, 'Web', false),
        ('o5', 'D', '2024-01-15 10:00', 120, 'web', false), ('o6', 'E', '2024-01-15 10:00', 100, 'phone', false),
        ('o7', 'F', '2024-01-15 10:00', 80, 'web', false), ('o8', 'G', '2024-01-15 10:00', 60, 'store', false),
        ('o9', 'H', '2024-01-15 10:00', 40, 'web', false), ('o10', 'I', '2024-01-15 10:00', 20, 'web', false),
        ('o11', 'J', '2024-01-15 10:00', 2, 'store', false), ('o12', NULL, '2024-01-15 10:00', 70, 'web', false)""")
    # Default SLA targets (first response / resolution, hours): urgent 4/24, high 8/48, normal 24/72, low 48/120.
    con.execute("""INSERT INTO support_tickets (ticket_id, customer_id, created_at, first_response_at, resolved_at,
        channel, priority, category, csat) VALUES
        ('t1', 'A', '2024-03-01 09:00', '2024-03-01 10:00', '2024-03-01 12:00', 'email', 'normal', 'billing', 5),
        ('t2', 'A', '2024-03-10 09:00', '2024-03-10 19:00', '2024-03-11 09:00', 'phone', 'high', 'delivery', 3),
        ('t3', 'A', '2024-03-30 12:00', NULL, NULL, 'chat', 'normal', 'delivery', NULL),
        ('t4', 'B', '2024-03-29 10:00', '2024-03-29 11:00', NULL, 'email', 'normal', 'Complaint', NULL),
        ('t5', 'B', '2024-03-05 09:00', '2024-03-05 10:00', '2024-03-06 09:00', 'Email ', 'low', 'returns', 4),
        ('t6', 'C', '2024-03-20 09:00', '2024-03-22 09:00', '2024-03-22 10:00', 'email', 'normal', 'billing', 2),
        ('t7', 'F', '2024-03-15 09:00', '2024-03-15 09:30', '2024-03-19 09:00', 'phone', 'normal', 'delivery', 3),
        ('t8', 'J', '2024-03-25 09:00', '2024-03-25 12:00', '2024-03-25 15:00', 'phone', 'urgent', 'account', 4),
        ('t9', NULL, '2024-03-12 09:00', '2024-03-12 10:00', '2024-03-12 11:00', 'chat', 'normal', 'other', NULL),
        ('t10', 'D', '2024-02-10 09:00', '2024-02-10 19:00', '2024-02-11 09:00', 'chat', 'high', 'account', 5),
        ('t11', 'A', '2024-04-02 09:00', NULL, NULL, 'email', 'normal', 'other', NULL),
        ('t12', 'D', '2024-03-31 22:00', NULL, NULL, 'chat', 'urgent', 'delivery', NULL),
        ('t13', 'E', '2024-03-01 09:00', '2024-03-01 10:00', NULL, 'web', 'normal', 'returns', NULL)""")
    con.execute("""INSERT INTO campaigns (campaign_id, channel, start_date) VALUES
        ('K1', 'email', '2024-03-01'), ('K2', 'SMS', '2024-03-05')""")
    con.execute("""INSERT INTO campaign_contacts (campaign_id, customer_id, contact_group, contacted_at, is_sent,
        contact_cost) VALUES
        ('K1', 'A', 'treatment', '2024-03-01 09:00', true, 0.5), ('K1', 'B', 'treatment', '2024-03-01', true, 0.5),
        ('K1', 'F', 'treatment', '2024-03-01 09:00', true, 0.5), ('K1', 'C', 'control', '2024-03-01', false, NULL),
        ('K2', 'G', 'treatment', NULL, NULL, NULL), ('K1', 'H', 'treatment', '2024-04-05 09:00', true, 0.5)""")
    con.execute("""INSERT INTO surveys (survey_id, customer_id, responded_at, nps_score, channel) VALUES
        ('s1', 'A', '2024-03-10 10:00', 9, 'email'), ('s2', 'B', '2024-03-11 10:00', 7, 'web'),
        ('s3', 'J', '2024-03-12 10:00', 3, 'email'), ('s4', 'K', '2024-03-13 10:00', 8, 'sms'),
        ('s5', 'A', '2024-04-10 10:00', 9, 'email')""")
    return store.ibis_backend(con)


# Profit (margin = 0.5 x net amount, no order lines; tickets email/chat/web 1, phone 2; contacts as given, SMS 0.25):
#   A 0.5 x 250 - (1 + 2 + 1) - 0.5 = 120.5   B 100 - 2 - 0.5 = 97.5   C 70 - 1 = 69   D 60 - 2 = 58   E 50 - 1 = 49
#   F 40 - 2 - 0.5 = 37.5   G 30 - 0.25 = 29.75   H 20   I 10   J 1 - 2 = -1   (t11, s5 and H's contact are after AS_OF)
# Ten customers: A 0/10 ranked above → Platinum; B 1/10 → Gold; C, D, E (2-4/10) Silver; F-I Bronze; J Loss-making.
#
# Ticket facts at 2024-04-01 00:00 (FR = first response; "known" = breached, or answered and resolved):
#   t1  A  FR 1h, resolved 3h: met                        t2  A  high: FR 10h > 8 breached
#   t3  A  open, no reply for 36h > 24: breached          t4  B  FR 1h, open 62h < 72: pending (not known)
#   t5  B  low: FR 1h, resolved 24h: met                  t6  C  FR 48h > 24: breached
#   t7  F  resolved 96h > 72: breached (resolution)      t8  J  urgent: FR 3h, resolved 6h: met
#   t9  -  anonymous, met                                 t10 D  high: FR 10h > 8: breached (in February)
#   t12 D  urgent, open 2h: pending                       t13 E  FR 1h, open 735h > 72: breached (resolution)


class TestServiceByTier:
    @pytest.fixture
    def by_tier(self, backend):
        return service.service_by_tier(backend, AS_OF, rates=RATES).set_index("value_tier")

    def test_hand_computed(self, by_tier):
        t = by_tier
        assert list(t.index) == ["Platinum", "Gold", "Silver", "Bronze", "Loss-making", "Top tiers", "Other tiers"]
        assert list(t.columns) == list(service.TIER_SERVICE_COLUMNS[1:])
        assert t.is_group.tolist() == [False] * 5 + [True, True]
        assert t.tier_group.tolist() == ["top", "top", "rest", "rest", "rest", "top", "rest"]
        assert t.customers.tolist() == [1, 1, 3, 4, 1, 2, 8]
        # Platinum t1-t3; Gold t4, t5; Silver t6, t10, t12, t13; Bronze t7; Loss-making t8 (t9 has no customer)
        assert t.tickets.tolist() == [3, 2, 4, 1, 1, 5, 6]
        assert t.tickets_per_customer.tolist() == pytest.approx([3, 2, 4 / 3, 1 / 4, 1, 5 / 2, 6 / 8])
        # known: Gold leaves out pending t4, Silver pending t12
        assert t.sla_known_tickets.tolist() == [3, 1, 3, 1, 1, 4, 5]
        assert t.breaches.tolist() == [2, 0, 3, 1, 0, 2, 4]
        assert t.breach_rate.tolist() == pytest.approx([2 / 3, 0, 1, 1, 0, 2 / 4, 4 / 5])
        # first response: t12 is pending; t7 and t13 were answered in time
        assert t.first_response_known_tickets.tolist() == [3, 2, 3, 1, 1, 5, 5]
        assert t.first_response_breaches.tolist() == [2, 0, 2, 0, 0, 2, 2]
        assert t.first_response_breach_rate.tolist() == pytest.approx([2 / 3, 0, 2 / 3, 0, 0, 2 / 5, 2 / 5])
        # answered: Platinum 1, 10 → 5.5; Gold 1, 1; Silver 48, 10, 1 → 10; top 1, 1, 1, 10 → 1;
        # rest 48, 10, 1, 0.5, 3 → 3
        assert t.median_first_response_hours.tolist() == pytest.approx([5.5, 1, 10, 0.5, 3, 1, 3])
        # CSAT: Platinum 5, 3; Gold 4; Silver 2, 5; Bronze 3; Loss-making 4; top 5, 3, 4; rest 2, 5, 3, 4
        assert t.csat_mean.tolist() == pytest.approx([4, 4, 3.5, 3, 4, 4, 3.5])
        assert t.csat_responses.tolist() == [2, 1, 2, 1, 1, 3, 4]
        # rest: deviations -1.5, 1.5, -0.5, 0.5 → variance 5 / 3
        assert t.loc["Other tiers", "csat_sd"] == pytest.approx((5 / 3) ** 0.5)
        assert t.loc["Top tiers", "csat_sd"] == pytest.approx(1.0)
        assert pd.isna(t.loc["Gold", "csat_sd"])  # one rating
        # open: t3; t4; t12, t13
        assert t.open_tickets.tolist() == [1, 1, 2, 0, 0, 2, 2]
        assert t.loc["Platinum", "service_level"].startswith("Dedicated account manager")
        assert t.loc[["Top tiers", "Other tiers"], "service_level"].isna().all()

    def test_groups_add_up(self, by_tier):
        tiers = by_tier[~by_tier.is_group]
        for name in ("customers", "tickets", "breaches", "sla_known_tickets", "csat_responses", "open_tickets"):
            assert tiers[name].sum() == by_tier.loc[["Top tiers", "Other tiers"], name].sum(), name

    def test_top_tiers_by_number_and_name(self, backend):
        t = service.service_by_tier(backend, AS_OF, rates=RATES, top_tiers=1).set_index("value_tier")
        assert t.loc["Top tiers", "customers"] == 1 and t.loc["Top tiers", "tickets"] == 3  # Platinum alone
        t = service.service_by_tier(backend, AS_OF, rates=RATES, top_tiers=("Platinum", "Gold", "Silver"))
        assert t.set_index("value_tier").loc["Top tiers", "tickets"] == 9
        with pytest.raises(ValueError, match=r"top_tiers: unknown tier\(s\) \['Diamond'\]"):
            service.service_by_tier(backend, AS_OF, top_tiers=("Diamond",))

    def test_region_and_window(self, backend):
        # North is A and B: tiers rank within the two, A 0/2 ranked above → Platinum, B 1/2 = 50% → Bronze;
        # C-J and their tickets drop out
        t = service.service_by_tier(backend, AS_OF, rates=RATES, regions="North").set_index("value_tier")
        assert t.customers.tolist() == [1, 0, 0, 1, 0, 1, 1]
        assert t.tickets.tolist() == [3, 0, 0, 2, 0, 3, 2]
        assert pd.isna(t.loc["Gold", "breach_rate"]) and t.loc["Other tiers", "breach_rate"] == 0
        # from 10 March nobody bought (the orders are from January), so the customers with a ticket in the window
        # only cost money and are all Loss-making: A -3 (t2, t3), B -1 (t4), C -1 (t6), D -1 (t12), F -2 (t7),
        # J -2 (t8); E's t13, t10 and the contacts are older
        t = service.service_by_tier(backend, AS_OF, date(2024, 3, 10), rates=RATES).set_index("value_tier")
        assert t.customers.tolist() == [0, 0, 0, 0, 6, 0, 6]
        assert t.loc["Loss-making", "tickets"] == 7
        # breached t2, t3, t6, t7 of the known t2, t3, t6, t7, t8 (t4, t12 pending)
        assert t.loc["Loss-making", "breach_rate"] == pytest.approx(4 / 5)

    def test_service_gap(self, by_tier):
        gap = service.service_gap(by_tier.reset_index())
        assert gap.top_tiers == ("Platinum", "Gold")
        assert (gap.top_tickets, gap.rest_tickets) == (5, 6)
        # breaches 2 of 4 known against 4 of 5: -0.3 with Newcombe's interval (-0.686, 0.250)
        assert gap.top_breach_rate == pytest.approx(0.5) and gap.rest_breach_rate == pytest.approx(0.8)
        newcombe = proportion_lift(2, 4, 4, 5)
        assert gap.breach_rate_difference == pytest.approx(-0.3)
        assert (gap.breach_ci_low, gap.breach_ci_high) == pytest.approx((newcombe.ci_low, newcombe.ci_high))
        assert (gap.breach_ci_low, gap.breach_ci_high) == pytest.approx((-0.6864, 0.2501), abs=1e-4)
        assert gap.breach_p_value == pytest.approx(newcombe.p_value)
        # CSAT 4 (var 1, n 3) against 3.5 (var 5/3, n 4): Welch
        welch = mean_lift(4, 1, 3, 3.5, 5 / 3, 4)
        assert gap.csat_difference == pytest.approx(0.5)
        assert (gap.csat_ci_low, gap.csat_ci_high) == pytest.approx((welch.ci_low, welch.ci_high))
        assert gap.is_better_served is None  # the interval holds 0
        assert gap.sentence == (
            "Platinum and Gold customers had 50.0% of their tickets breach the SLA, against 80.0% for the other "
            "customers (difference -30.0 points, 95% CI -68.6 to +25.0): no clear difference in service. "
            "CSAT 4.00 against 3.50.")

    def test_service_gap_reads_a_clear_difference(self, by_tier):
        frame = by_tier.reset_index()
        top, rest = frame.value_tier == "Top tiers", frame.value_tier == "Other tiers"
        frame.loc[top, ["breaches", "sla_known_tickets", "breach_rate"]] = [10, 200, 0.05]
        frame.loc[rest, ["breaches", "sla_known_tickets", "breach_rate"]] = [100, 200, 0.5]
        gap = service.service_gap(frame)
        assert gap.breach_ci_high < 0 and gap.is_better_served is True
        assert "do get better service (fewer SLA breaches)" in gap.sentence
        frame.loc[top, ["breaches", "breach_rate"]] = [180, 0.9]
        assert service.service_gap(frame).is_better_served is False

    def test_service_gap_without_tickets(self, by_tier):
        frame = by_tier.reset_index()
        frame.loc[frame.value_tier == "Other tiers", ["sla_known_tickets", "breaches", "csat_responses"]] = 0
        frame.loc[frame.value_tier == "Other tiers", ["breach_rate", "csat_mean"]] = float("nan")
        gap = service.service_gap(frame)
        assert gap.breach_rate_difference is None and gap.is_better_served is None
        assert "cannot be compared" in gap.note and "not enough tickets" in gap.sentence

    def test_service_gap_needs_the_frame(self):
        with pytest.raises(ValueError, match="Required column value_tier missing"):
            service.service_gap(pd.DataFrame({"tickets": [1]}))

    def test_values_can_be_passed_in(self, backend):
        values = value.customer_value(backend, AS_OF, rates=RATES)
        given = service.service_by_tier(backend, AS_OF, rates=RATES, values=values)
        pd.testing.assert_frame_equal(given, service.service_by_tier(backend, AS_OF, rates=RATES))


class TestBreachByChannel:
    def test_hand_computed(self, backend):
        b = service.breach_by_channel(backend, AS_OF)
        assert list(b.columns) == list(service.CHANNEL_BREACH_COLUMNS)
        # web t13 1/1; chat t3, t10 of t3, t9, t10 (t12 pending) 2/3; phone t2, t7 of 3: 2/3; email t6 of
        # t1, t5 ('Email '), t6 (t4 pending): 1/3. Ties by name: chat before phone.
        assert b.channel.tolist() == ["web", "chat", "phone", "email"]
        assert b.tickets.tolist() == [1, 4, 3, 4]
        assert b.sla_known_tickets.tolist() == [1, 3, 3, 3]
        assert b.breaches.tolist() == [1, 2, 2, 1]
        assert b.breach_rate.tolist() == pytest.approx([1, 2 / 3, 2 / 3, 1 / 3])
        assert (b.breach_rate_ci_low[0], b.breach_rate_ci_high[0]) == pytest.approx(wilson_interval(1, 1))
        assert (b.breach_rate_ci_low[3], b.breach_rate_ci_high[3]) == pytest.approx((0.0615, 0.7923), abs=1e-4)
        # first response: web 0/1; chat t3, t10 of t3, t9, t10; phone t2 of 3; email t6 of t1, t4, t5, t6
        assert b.first_response_breach_rate.tolist() == pytest.approx([0, 2 / 3, 1 / 3, 1 / 4])
        # 10 known tickets and 6 breaches
        assert b.share_of_tickets.tolist() == pytest.approx([0.1, 0.3, 0.3, 0.3])
        assert b.share_of_breaches.tolist() == pytest.approx([1 / 6, 2 / 6, 2 / 6, 1 / 6])
        assert b.breach_concentration.tolist() == pytest.approx([10 / 6, 10 / 9, 10 / 9, 5 / 9])
        # web's breach share exceeds its ticket share most: +6.7 points against +3.3 for chat and phone
        assert b.is_breach_hotspot.tolist() == [True, False, False, False]

    def test_region_filter_and_ties(self, backend):
        b = service.breach_by_channel(backend, AS_OF, regions=["North"])
        # A and B: chat t3 1/1, phone t2 1/1, email t1, t5 0/2 (t4 pending); chat and phone tie on everything
        assert b.channel.tolist() == ["chat", "phone", "email"]
        assert b.breach_rate.tolist() == pytest.approx([1, 1, 0])
        assert b.is_breach_hotspot.tolist() == [True, False, False]  # the first of equal excesses

    def test_same_rates_as_the_support_kpis(self, backend):
        mine = service.breach_by_channel(backend, AS_OF).set_index("channel").sort_index()
        kpis = support.ticket_kpis(backend, AS_OF, by="channel").set_index("channel").sort_index()
        assert list(mine.index) == list(kpis.index)
        for name in ("tickets", "breach_rate", "first_response_breach_rate"):
            assert mine[name].tolist() == pytest.approx(kpis[name].tolist()), name

    def test_blank_channel(self, con, backend):
        con.execute("""INSERT INTO support_tickets (ticket_id, customer_id, created_at, first_response_at,
            resolved_at, channel) VALUES ('t14', 'J', '2024-03-26 09:00', '2024-03-26 10:00', '2024-03-26 11:00',
            ' ')""")
        b = service.breach_by_channel(backend, AS_OF).set_index("channel")
        assert b.loc["Unknown", "tickets"] == 1 and b.loc["Unknown", "breach_rate"] == 0
        assert service.contact_points(backend, AS_OF).set_index(["touchpoint", "channel"]).loc[
            ("support", "Unknown"), "events"] == 1

    def test_business_hours_change_the_clock(self, backend):
        # 9-17 Monday-Friday. Weekend tickets wait 0 working hours until Monday: t3 (Saturday 30 March, no reply)
        # and t12 (Sunday) are pending, t10 (Saturday 10 February, answered the same day) and t2 (Sunday 10 March,
        # answered Sunday, resolved Monday 09:00) are met. t6: Wednesday 09:00 to Friday 09:00 = 16 working hours,
        # met; t7: Friday 8 + Monday 8 = 16 hours to resolve, met. Only t13 (open since Friday 1 March: 21 working
        # days x 8 = 168 hours > 72) is still breached.
        policy = SlaPolicy(business_hours=BusinessHours())
        b = service.breach_by_channel(backend, AS_OF, policy=policy)
        assert b.channel.tolist() == ["web", "chat", "email", "phone"]
        assert b.sla_known_tickets.tolist() == [1, 2, 3, 3]  # chat t9, t10; email t1, t5, t6; phone t2, t7, t8
        assert b.breaches.tolist() == [1, 0, 0, 0]
        assert b.is_breach_hotspot.tolist() == [True, False, False, False]

    def test_no_tickets(self, con):
        backend = store.ibis_backend(con)
        assert service.breach_by_channel(backend, AS_OF).empty
        assert service.tickets_unavailable(backend) == ("No support tickets have been imported yet; import support "
                                                        "tickets to see this.")


class TestActionList:
    def test_top_tiers(self, backend):
        a = service.action_list(backend, AS_OF, rates=RATES)
        assert list(a.columns) == list(service.ACTION_COLUMNS)
        # A: open breached t3, Platinum → rule 1; B: open complaint t4 (pending, not breached) → rule 3
        assert a.customer_id.tolist() == ["A", "B"]
        assert a.urgency.tolist() == [1, 3]
        assert a.suggested_action.tolist() == [service.ACTION_RULES[0].action, service.ACTION_RULES[2].action]
        assert a.suggested_action[0] == "Platinum customer, breached ticket open: account manager calls today."
        assert a.name.tolist() == ["Ann", "Bob"] and a.email.tolist() == ["ann@x.org", "bob@x.org"]
        assert a.value_tier.tolist() == ["Platinum", "Gold"]
        assert a.profit.tolist() == pytest.approx([120.5, 97.5])
        assert a.open_tickets.tolist() == [1, 1]
        assert a.breached_tickets.tolist() == [2, 0]  # A: t2 (10 March, within 30 days) and open t3
        assert a.oldest_open_age_days.tolist() == pytest.approx([36 / 24, 62 / 24])
        assert a.last_ticket_category.tolist() == ["delivery", "Complaint"]  # t11 (2 April) is after AS_OF
        assert a.last_ticket_at.tolist() == [pd.Timestamp("2024-03-30 12:00"), pd.Timestamp("2024-03-29 10:00")]

    def test_three_tiers_rank_by_urgency_then_profit(self, backend):
        a = service.action_list(backend, AS_OF, rates=RATES, top_tiers=3)
        # E: open t13 breached (created 1 March, before the 30 days, but open) → rule 2; C: t6 breached 20 March,
        # resolved → rule 4; D: t12 open 2 hours, pending; D's breach t10 was in February → rule 5
        assert a.customer_id.tolist() == ["A", "E", "B", "C", "D"]
        assert a.urgency.tolist() == [1, 2, 3, 4, 5]
        assert a.suggested_action[1] == "High value, breached ticket open: call today and resolve it."
        assert a.suggested_action[4] == "High value, ticket open within SLA: move it to the priority queue."
        assert a.breached_tickets.tolist() == [2, 1, 0, 1, 0]
        assert a.open_tickets.tolist() == [1, 1, 1, 0, 1]
        assert a.oldest_open_age_days.tolist() == pytest.approx([1.5, 735 / 24, 62 / 24, float("nan"), 2 / 24],
                                                                nan_ok=True)
        assert service.action_list(backend, AS_OF, rates=RATES, top_tiers=3, limit=2).customer_id.tolist() == [
            "A", "E"]

    def test_recent_window(self, backend):
        # a 5-day window (27-31 March): C's breach of 20 March is no longer recent, so C drops out
        a = service.action_list(backend, AS_OF, rates=RATES, top_tiers=3, recent_days=5)
        assert a.customer_id.tolist() == ["A", "E", "B", "D"]
        assert a.breached_tickets.tolist() == [1, 1, 0, 0]  # A: only the open t3

    def test_rules_are_data(self, backend):
        rules = (service.ActionRule(("has_open", "has_recent_breach"), "Open and breached."),
                 service.ActionRule(("has_open",), "Open."))
        a = service.action_list(backend, AS_OF, rates=RATES, top_tiers=3, rules=rules)
        # A and E match the first rule; B and D the second; C (no open ticket) none and comes last
        assert a.customer_id.tolist() == ["A", "E", "B", "D", "C"]
        assert a.suggested_action.tolist()[:4] == ["Open and breached.", "Open and breached.", "Open.", "Open."]
        assert pd.isna(a.urgency[4]) and pd.isna(a.suggested_action[4])
        with pytest.raises(ValueError, match=r"unknown condition\(s\) \['is_angry'\]"):
            service.action_list(backend, AS_OF, rates=RATES, rules=(service.ActionRule(("is_angry",), "x"),))

    def test_bad_arguments(self, backend):
        with pytest.raises(ValueError, match="limit must be a whole number of at least 1, got 0"):
            service.action_list(backend, AS_OF, limit=0)
        with pytest.raises(ValueError, match=r"top_tiers: give between 1 and 4 tiers, got 5"):
            service.action_list(backend, AS_OF, top_tiers=5)

    def test_empty_store(self, con):
        a = service.action_list(store.ibis_backend(con), AS_OF)
        assert a.empty and list(a.columns) == list(service.ACTION_COLUMNS)


class TestChannels:
    def test_channel_usage_hand_computed(self, backend):
        u = service.channel_usage(backend, AS_OF)
        assert list(u.columns) == list(service.CHANNEL_USAGE_COLUMNS)
        rows = [tuple(r) for r in u[["segment", "touchpoint", "channel", "customers", "events"]].itertuples(
            index=False)]
        assert rows == [
            # At risk (A, B): purchases A web, B store; tickets t1, t4, t5 email, t2 phone, t3 chat; contacts K1;
            # surveys s1 email, s2 web
            ("At risk", "orders", "store", 1, 1), ("At risk", "orders", "web", 1, 1),
            ("At risk", "support", "email", 2, 3), ("At risk", "support", "chat", 1, 1),
            ("At risk", "support", "phone", 1, 1),
            ("At risk", "campaigns", "email", 2, 2),
            ("At risk", "surveys", "email", 1, 1), ("At risk", "surveys", "web", 1, 1),
            # Lost (C-J): purchases web C ('Web'), D, F, H, I; store G, J; phone E (A's return is no purchase);
            # tickets t10, t12 chat (D), t7, t8 phone, t6 email, t13 web; contacts F (email), G (SMS, dated by the
            # campaign start; C's control row was not sent); survey s3
            ("Lost", "orders", "web", 5, 5), ("Lost", "orders", "store", 2, 2), ("Lost", "orders", "phone", 1, 1),
            ("Lost", "support", "chat", 1, 2), ("Lost", "support", "phone", 2, 2),
            ("Lost", "support", "email", 1, 1), ("Lost", "support", "web", 1, 1),
            ("Lost", "campaigns", "email", 1, 1), ("Lost", "campaigns", "sms", 1, 1),
            ("Lost", "surveys", "email", 1, 1),
            ("No purchases", "surveys", "sms", 1, 1),  # K
        ]
        assert u.share_of_events.tolist() == pytest.approx([
            0.5, 0.5, 3 / 5, 1 / 5, 1 / 5, 1, 0.5, 0.5,
            5 / 8, 2 / 8, 1 / 8, 2 / 6, 2 / 6, 1 / 6, 1 / 6, 0.5, 0.5, 1, 1])
        sums = u.groupby(["segment", "touchpoint"]).share_of_events.sum()
        assert sums.tolist() == pytest.approx([1.0] * len(sums))

    def test_channel_usage_filters(self, backend):
        u = service.channel_usage(backend, AS_OF, segments="At risk")
        assert set(u.segment) == {"At risk"} and u.events.sum() == 11
        u = service.channel_usage(backend, AS_OF, start=date(2024, 3, 11), regions="North")
        # from 11 March, A and B: tickets t3, t4 (A's t2 was on the 10th); survey s2; no purchase, no contact
        assert [tuple(r) for r in u[["touchpoint", "channel", "events"]].itertuples(index=False)] == [
            ("support", "chat", 1), ("support", "email", 1), ("surveys", "web", 1)]

    def test_contact_points_hand_computed(self, backend):
        c = service.contact_points(backend, AS_OF, rates=RATES)
        assert list(c.columns) == list(service.CONTACT_POINT_COLUMNS)
        rows = [tuple(r) for r in c[["touchpoint", "channel", "events", "customers"]].itertuples(index=False)]
        assert rows == [
            ("orders", "web", 6, 6), ("orders", "store", 3, 3), ("orders", "phone", 1, 1),
            ("support", "email", 4, 3), ("support", "chat", 3, 2), ("support", "phone", 3, 3),
            ("support", "web", 1, 1),
            ("campaigns", "email", 3, 3), ("campaigns", "sms", 1, 1),
            ("surveys", "email", 2, 2), ("surveys", "sms", 1, 1), ("surveys", "web", 1, 1),
        ]
        assert c.share_of_events.tolist() == pytest.approx([0.6, 0.3, 0.1, 4 / 11, 3 / 11, 3 / 11, 1 / 11, 0.75,
                                                            0.25, 0.5, 0.25, 0.25])
        # tickets at the channel rates (email 4 x 1, chat 3 x 1, phone 3 x 2, web 1); contacts 0.5 each given,
        # SMS at its rate 0.25; no cost for orders and surveys
        assert c.total_cost.tolist() == pytest.approx([float("nan")] * 3 + [4, 3, 6, 1, 1.5, 0.25]
                                                      + [float("nan")] * 3, nan_ok=True)
        assert c.cost_per_event.tolist()[3:9] == pytest.approx([1, 1, 2, 1, 0.5, 0.25])

    def test_costs_agree_with_customer_value(self, backend):
        c = service.contact_points(backend, AS_OF, rates=RATES).set_index("touchpoint")
        v = value.customer_value(backend, AS_OF, rates=RATES)
        assert c.loc["support", "total_cost"].sum() == pytest.approx(v.ticket_cost.sum())  # 15
        assert c.loc["campaigns", "total_cost"].sum() == pytest.approx(v.campaign_cost.sum())  # 1.75

    def test_missing_and_empty_touchpoints_are_skipped(self, con, backend):
        assert service.touchpoints_unavailable(backend) == {}
        con.execute("DELETE FROM surveys")
        assert service.touchpoints_unavailable(backend) == {
            "surveys": "No survey answers have been imported yet; import them to see this touchpoint."}
        c = service.contact_points(backend, AS_OF, rates=RATES)
        assert c.touchpoint.unique().tolist() == ["orders", "support", "campaigns"]
        con.execute("DROP TABLE support_tickets")
        assert service.touchpoints_unavailable(backend)["support"] == (
            "There is no support_tickets table in this database; import support tickets to see this touchpoint.")
        assert service.channel_usage(backend, AS_OF).touchpoint.unique().tolist() == ["orders", "campaigns"]

    def test_empty_store(self, con):
        backend = store.ibis_backend(con)
        assert set(service.touchpoints_unavailable(backend)) == set(service.TOUCHPOINTS)
        assert service.channel_usage(backend, AS_OF).empty
        assert list(service.contact_points(backend, AS_OF).columns) == list(service.CONTACT_POINT_COLUMNS)


class TestHelp:
    def test_every_column_has_a_label_and_help(self):
        for columns in (service.TIER_SERVICE_COLUMNS, service.CHANNEL_BREACH_COLUMNS, service.ACTION_COLUMNS,
                        service.CHANNEL_USAGE_COLUMNS, service.CONTACT_POINT_COLUMNS):
            for name in columns:
                assert service.SERVICE_HELP[name] and service.SERVICE_LABELS[name], name


class _SparkOptions(Config):
    treat_nan_as_null: bool = False


class TestPortability:
    @pytest.fixture
    def exprs(self, backend):
        tables = {name: backend.table(name) for name in ("customers", "orders", "support_tickets",
                                                         "campaign_contacts", "campaigns", "surveys")}
        policy = SlaPolicy(business_hours=BusinessHours())
        facts = ticket_facts_expr(tables["support_tickets"], AS_OF, policy)
        tier_map = service._tier_map(pd.DataFrame({"customer_id": ["A", "B"], "value_tier": ["Platinum", "Gold"]}),
                                     ("Platinum",))
        scope = tables["customers"].filter(tables["customers"].region == "North")
        events = service._touch_events_expr(tables, service.TOUCHPOINTS, AS_OF, date(2024, 1, 1), RATES, scope)
        return {
            "tiers": service._tier_service_expr(service._window_facts(facts, date(2024, 1, 1)), tier_map),
            "channels": service._channel_breach_expr(facts),
            "actions": service._action_facts_expr(facts, AS_OF, 30),
            "usage": service._channel_usage_expr(events, tables["orders"], AS_OF),
            "contact_points": service._contact_points_expr(events),
        }

    @pytest.mark.parametrize(("dialect", "read", "quote"), [("postgres", "postgres", '"'), ("pyspark", "spark", "`")],
                             ids=["postgres", "spark"])
    def test_compiles(self, exprs, monkeypatch, dialect, read, quote):
        if ibis.options.pyspark is None:
            monkeypatch.setattr(ibis.options, "pyspark", _SparkOptions())
        for name, expr in exprs.items():
            sql = ibis.to_sql(expr, dialect=dialect)
            sqlglot.parse_one(sql, read=read)
            table = "support_tickets" if name in ("tiers", "channels", "actions") else "surveys"
            assert f"{quote}{table}{quote}" in sql, name


@pytest.fixture(scope="module")
def sample(sample_store, tmp_path_factory):
    """A private copy of the sample store (tests may not change the shared one) and the generator's truth."""
    path = tmp_path_factory.mktemp("service") / "crm.duckdb"
    shutil.copy(sample_store, path)
    con = store.connect(path)
    truth = json.loads((SAMPLE_DIR / "ground_truth.json").read_text())
    yield con, store.ibis_backend(con), truth
    con.close()


SAMPLE_AS_OF = date(2026, 6, 30)


class TestSample:
    """The planted slow channel, recovered; the action list and channel shares checked against the tables."""

    def test_email_is_the_slow_channel(self, sample):
        _, backend, truth = sample
        b = service.breach_by_channel(backend, SAMPLE_AS_OF).set_index("channel")
        assert truth["support"]["slow_channel"] == SLOW_CHANNEL == "email"
        assert b.breach_rate.idxmax() == SLOW_CHANNEL and b.share_of_breaches.idxmax() == SLOW_CHANNEL
        assert b.index[b.is_breach_hotspot].tolist() == [SLOW_CHANNEL]
        assert b.loc[SLOW_CHANNEL, "share_of_breaches"] > 1.5 * b.loc[SLOW_CHANNEL, "share_of_tickets"]
        # e-mail's breach rate is clearly above every other channel's: the intervals do not overlap
        others = b.drop(index=SLOW_CHANNEL)
        assert b.loc[SLOW_CHANNEL, "breach_rate_ci_low"] > others.breach_rate_ci_high.max()
        # the generator's breach is the first response only (response time > target)
        planted = truth["support"]["observed_breach_rate_by_channel"]
        for channel, rate in planted.items():
            assert b.loc[channel, "first_response_breach_rate"] == pytest.approx(rate, abs=0.01), channel

    def test_tiers_cover_every_ticket(self, sample):
        con, backend, _ = sample
        t = service.service_by_tier(backend, SAMPLE_AS_OF).set_index("value_tier")
        n_tickets = con.execute("SELECT count(*) FROM support_tickets WHERE customer_id IS NOT NULL").fetchone()[0]
        assert t.loc[~t.is_group, "tickets"].sum() == n_tickets
        assert t.loc["Top tiers", "tickets"] + t.loc["Other tiers", "tickets"] == n_tickets
        assert t.loc["Top tiers", "customers"] == t.loc[["Platinum", "Gold"], "customers"].sum()
        # the generator gives every customer the same response times whatever their value: no clear gap
        gap = service.service_gap(t.reset_index())
        assert gap.breach_ci_low < 0 < gap.breach_ci_high and gap.is_better_served is None

    def test_action_list_against_sql(self, sample):
        con, backend, _ = sample
        values = value.customer_value(backend, SAMPLE_AS_OF)
        a = service.action_list(backend, SAMPLE_AS_OF, limit=10_000, values=values)
        top = set(values.customer_id[values.value_tier.isin(["Platinum", "Gold"])])
        assert set(a.value_tier) <= {"Platinum", "Gold"} and set(a.customer_id) <= top
        end, recent = datetime(2026, 7, 1), datetime(2026, 6, 1)
        # open at the end of 30 June, or breached on wall-clock hours under the default targets and created
        # from 1 June (30 days) or still open
        rows = con.execute("""
            WITH t AS (
                SELECT customer_id, created_at,
                    resolved_at IS NULL OR resolved_at >= $end AS is_open,
                    coalesce(CASE WHEN first_response_at < $end THEN first_response_at END, $end) AS answered,
                    coalesce(CASE WHEN resolved_at < $end THEN resolved_at END, $end) AS closed,
                    CASE coalesce(trim(lower(priority)), '') WHEN 'urgent' THEN 4 WHEN 'high' THEN 8
                        WHEN 'low' THEN 48 ELSE 24 END AS fr_target,
                    CASE coalesce(trim(lower(priority)), '') WHEN 'urgent' THEN 24 WHEN 'high' THEN 48
                        WHEN 'low' THEN 120 ELSE 72 END AS res_target
                FROM support_tickets WHERE created_at < $end AND customer_id IS NOT NULL)
            SELECT customer_id, count(*) FILTER (WHERE is_open) AS open_tickets,
                count(*) FILTER (WHERE (epoch(answered - created_at) / 3600 > fr_target
                                        OR epoch(closed - created_at) / 3600 > res_target)
                                 AND (created_at >= $recent OR is_open)) AS breached_tickets
            FROM t GROUP BY customer_id""", {"end": end, "recent": recent}).df()
        rows = rows[(rows.open_tickets > 0) | (rows.breached_tickets > 0)]
        expected = rows[rows.customer_id.isin(top)].set_index("customer_id").sort_index()
        got = a.set_index("customer_id").sort_index()
        assert list(got.index) == list(expected.index) and len(got) >= 10
        assert got.open_tickets.tolist() == expected.open_tickets.tolist()
        assert got.breached_tickets.tolist() == expected.breached_tickets.tolist()
        # most urgent first, then most profitable
        keys = list(zip(a.urgency, -a.profit))
        assert keys == sorted(keys)

    def test_channel_shares_and_totals(self, sample):
        con, backend, _ = sample
        u = service.channel_usage(backend, SAMPLE_AS_OF)
        sums = u.groupby(["segment", "touchpoint"]).share_of_events.sum()
        assert sums.tolist() == pytest.approx([1.0] * len(sums))
        events = u.groupby("touchpoint").events.sum()
        n_purchases, n_tickets, n_sent, n_surveys = con.execute("""SELECT
            (SELECT count(*) FROM orders WHERE customer_id IS NOT NULL AND NOT coalesce(is_return, false)
                AND amount >= 0),
            (SELECT count(*) FROM support_tickets WHERE customer_id IS NOT NULL),
            (SELECT count(*) FROM campaign_contacts WHERE is_sent),
            (SELECT count(*) FROM surveys WHERE customer_id IS NOT NULL)""").fetchone()
        assert events.to_dict() == {"orders": n_purchases, "support": n_tickets, "campaigns": n_sent,
                                    "surveys": n_surveys}
        c = service.contact_points(backend, SAMPLE_AS_OF).set_index(["touchpoint", "channel"])
        assert c.events.groupby(level=0).sum().to_dict() == events.to_dict()
        # the planted contact costs are per channel: email 0.03, SMS 0.06, direct mail 0.95
        assert c.loc[("campaigns", "email"), "cost_per_event"] == pytest.approx(0.03)
        assert c.loc[("campaigns", "direct mail"), "cost_per_event"] == pytest.approx(0.95)
