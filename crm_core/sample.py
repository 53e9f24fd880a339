"""Seeded sample CRM data with planted truth: every canonical table, coherent across tables, fully vectorised.

``generate`` returns one frame per canonical table (columns in ``schema.TABLES`` order) and a JSON-serialisable
``truth`` dict holding every planted parameter and the per-customer facts analytics must recover:

* purchases follow BG/NBD (λ ~ Gamma(r, rate α) per week, dropout p ~ Beta(a, b) after each repeat purchase), order
  values follow Gamma-Gamma; ~4% of orders are returns;
* true churners (dead at ``as_of``) and the customers who died in the 180 days after a past cutoff;
* one randomised campaign with a 20% control group and a persuadable segment carrying the uplift;
* SLA breaches concentrated in the e-mail support channel; one carrier with a high late-delivery rate; late
  deliveries raise the chance of a 'delivery' ticket and slightly lower the chance of buying again;
* referrals with a few influencers; ~1% duplicate customer records (e-mail, phone or name+postcode matches).

Nothing loops over customers in Python: 1,000,000 customers generate in well under a minute.
"""

from __future__ import annotations

import datetime as dt
import gzip
import json
import unicodedata
from dataclasses import dataclass, fields
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from crm_core.schema import TABLES

__all__ = ["SAMPLE_DIR", "SampleData", "generate", "write_sample"]

SAMPLE_DIR = Path(__file__).resolve().parent.parent / "sample_data"

# --------------------------------------------------------------------------------------------------------------
# Planted parameters (all copied into ``truth``)
# --------------------------------------------------------------------------------------------------------------
ACQUISITION_GROWTH = 3.0  # the daily sign-up rate at as_of is this multiple of the rate `years` earlier
DUPLICATE_SHARE = 0.01  # share of customer rows that are a second record of an earlier customer
DUPLICATE_ORDER_SHARE = 0.3  # share of duplicate records with one order (at sign-up); the rest have none
REFERRAL_SHARE = 0.10
INFLUENCER_SHARE_OF_REFERRALS = 0.35
INFLUENCERS_PER_1000 = 1.0
BGNBD = {"r": 0.75, "alpha": 6.0, "a": 1.0, "b": 3.0}  # λ ~ Gamma(r, rate alpha) per week; p ~ Beta(a, b)
GAMMA_GAMMA = {"p": 6.0, "q": 3.8, "gamma": 30.0}  # value ~ Gamma(p, rate ν); ν ~ Gamma(q, rate gamma)
RETURN_PROBABILITY = 0.045  # per purchase; the return is its own order 2-30 days later
LATE_DROPOUT_PROBABILITY = 0.15  # after a late delivery the customer stops buying with this probability
CHURN_HORIZON_DAYS = 180
CURRENCY = "GBP"
WEB_ORDER_SHARE = {True: (0.75, 0.18, 0.07), False: (0.25, 0.60, 0.15)}  # web, store, phone by is_web_registered
ORDER_CHANNELS = ("web", "store", "phone")

CATEGORIES = {  # name: (lowest list price, highest list price, gross margin)
    "Accessories": (2.0, 30.0, 0.62),
    "Beauty": (4.0, 60.0, 0.55),
    "Books": (5.0, 45.0, 0.30),
    "Apparel": (12.0, 140.0, 0.50),
    "Home": (8.0, 180.0, 0.45),
    "Garden": (10.0, 220.0, 0.40),
    "Sports": (15.0, 260.0, 0.35),
    "Electronics": (25.0, 450.0, 0.18),
}
PRODUCT_NOUNS = {
    "Accessories": ("Key Ring", "Phone Case", "Scarf", "Wallet", "Umbrella"),
    "Beauty": ("Face Cream", "Shampoo", "Perfume", "Lip Balm", "Hand Wash"),
    "Books": ("Cookbook", "Novel", "Atlas", "Puzzle Book", "Journal"),
    "Apparel": ("Jacket", "Jumper", "Jeans", "Dress", "Trainers"),
    "Home": ("Lamp", "Cushion", "Kettle", "Rug", "Mirror"),
    "Garden": ("Planter", "Hose", "Bird Feeder", "Lawn Chair", "Pruner"),
    "Sports": ("Yoga Mat", "Football", "Tennis Racket", "Bike Helmet", "Dumbbell Set"),
    "Electronics": ("Headphones", "Speaker", "Smart Watch", "Tablet", "Camera"),
}
PRODUCT_ADJECTIVES = ("Classic", "Eco", "Deluxe", "Compact", "Premium", "Everyday", "Vintage", "Essential")
N_PRODUCTS = 200

CARRIERS = {  # name: (share of shipped orders, late probability, promised transit days, cost per shipment)
    "SwiftParcel": (0.35, 0.05, 3, 3.95),
    "Northline Couriers": (0.30, 0.04, 3, 4.60),
    "ParcelPoint": (0.20, 0.30, 3, 2.85),
    "ExpressWay": (0.15, 0.03, 2, 6.50),
}
LATE_CARRIER = "ParcelPoint"
SPLIT_SHIPMENT_SHARE = 0.05
TICKET_AFTER_LATE = 0.35  # chance of a 'delivery' ticket within 14 days of a late delivery
TICKET_AFTER_ON_TIME = 0.03
TICKET_WINDOW_DAYS = 14

SLA_FIRST_RESPONSE_HOURS = {"urgent": 4, "high": 8, "normal": 24, "low": 48}
PRIORITIES = {"low": 0.25, "normal": 0.50, "high": 0.18, "urgent": 0.07}
TICKET_CHANNELS = {"email": 0.35, "phone": 0.25, "chat": 0.25, "web": 0.15}
RESPONSE_MEDIAN_SHARE_OF_SLA = {"email": 1.0, "web": 0.25, "chat": 0.06, "phone": 0.03}  # lognormal, sigma 0.7
SLOW_CHANNEL = "email"
BASELINE_TICKETS_PER_YEAR = 0.35
BASELINE_TICKET_CATEGORIES = {"billing": 0.18, "product question": 0.25, "account": 0.12, "delivery": 0.08,
                              "returns": 0.05, "complaint": 0.14, "compliment": 0.08, "other": 0.10}
TICKET_AFTER_RETURN = 0.25
OPEN_TICKET_SHARE = 0.03
CSAT_RESPONSE_RATE = 0.55
CSAT_BREACH_PENALTY = 1.4  # points off the latent 1-5 satisfaction when the first-response SLA was breached
TICKET_SUBJECTS = {
    "billing": ("Charged twice for my order", "Question about my invoice", "Refund not received yet"),
    "product question": ("Does this come in another size?", "How do I assemble this?", "Is this back in stock?"),
    "account": ("Cannot log in", "Please update my address", "Change the e-mail on my account"),
    "delivery": ("Where is my order?", "Tracking is not updating", "Change my delivery slot"),
    "late delivery": ("My parcel is late", "Delivery missed the promised date", "Order still not arrived"),
    "returns": ("How do I return an item?", "Return label request", "Refund for my returned item"),
    "complaint": ("Very unhappy with the service", "Item arrived damaged", "Wrong item sent"),
    "compliment": ("Thank you for the quick help", "Great service, thanks!", "Lovely product, well done"),
    "other": ("General enquiry", "Feedback on the website", "Question about gift cards"),
}
AGENTS = ("Amira Khan", "Ben Carter", "Chloe Davies", "Dan Murphy", "Ella Novak", "Femi Okafor", "Grace Lee",
          "Harry Shaw", "Isla Reid", "Jack Byrne", "Kasia Nowak", "Liam Walsh")

CAMPAIGNS = (  # in date order; "at" is the start as a share of the period (the last ends >30 days before as_of)
    {"name": "Welcome offer", "channel": "email", "at": 0.15, "days": 28, "rule": "new", "share": 1.0,
     "offer": "10% off the second order"},
    {"name": "Spring sale texts", "channel": "sms", "at": 0.28, "days": 14, "rule": "active", "share": 0.6,
     "offer": "20% off selected lines"},
    {"name": "Catalogue mailing", "channel": "direct mail", "at": 0.40, "days": 30, "rule": "high_value",
     "share": 1.0, "offer": "free shipping"},
    {"name": "Win-back", "channel": "email", "at": 0.52, "days": 21, "rule": "lapsed", "share": 1.0,
     "offer": "£10 voucher"},
    {"name": "Flash sale", "channel": "sms", "at": 0.63, "days": 7, "rule": "all", "share": 0.5,
     "offer": "25% off for 24 hours"},
    {"name": "VIP preview mailing", "channel": "direct mail", "at": 0.76, "days": 30, "rule": "high_value",
     "share": 1.0, "offer": "early access to the new range"},
    {"name": "Loyalty voucher test", "channel": "email", "at": 0.88, "days": 14, "rule": "all", "share": 1.0,
     "offer": "£5 voucher", "experiment": True},
    {"name": "Clearance", "channel": "email", "at": 0.95, "days": 14, "rule": "all", "share": 0.7,
     "offer": "up to 50% off"},
)
TARGET_RULES = {
    "new": "signed up in the 90 days before the start",
    "active": "at least one purchase in the 365 days before the start",
    "lapsed": "last purchase 180-540 days before the start",
    "high_value": "active, and in the top 20% of spend before the start",
    "all": "every customer signed up before the start",
}
CHANNEL_FUNNEL = {  # per contact: sent, opened | sent, clicked | opened, responded | clicked, converted | sent
    "email": {"sent": 0.98, "opened": 0.30, "clicked": 0.20, "responded": 0.50, "converted": 0.025},
    "sms": {"sent": 0.97, "opened": 0.85, "clicked": 0.08, "responded": 0.50, "converted": 0.020},
    "direct mail": {"sent": 1.00, "opened": 0.60, "clicked": 0.10, "responded": 0.60, "converted": 0.035},
}
CONTACT_COST = {"email": 0.03, "sms": 0.06, "direct mail": 0.95}  # per sent contact
CAMPAIGN_FIXED_COST = {"email": 1500.0, "sms": 800.0, "direct mail": 4000.0}
CONVERSION_WINDOW_DAYS = 14
EXPERIMENT = {"control_share": 0.20, "control_conversion": 0.04, "treatment_conversion": 0.07,
              "persuadable_lift": 0.10, "persuadable_min_orders": 3}

SURVEY_AFTER_DELIVERY = 0.08
SURVEY_AFTER_RATED_TICKET = 0.30
SURVEY_RELATIONSHIP = 0.03
NPS_LATE_PENALTY = 3.2
NPS_PER_CSAT_POINT = 1.1
SURVEY_COMMENT_SHARE = 0.6
SURVEY_THEMES = {
    "praise": ("Fast delivery, great service", "Great quality products", "Friendly and helpful staff",
               "Easy to order online", "Good value for money"),
    "neutral": ("It was fine", "Okay overall", "Decent but nothing special", "Prices could be lower"),
    "late_delivery": ("Delivery was late", "Parcel arrived days after the promised date",
                      "The courier was late again", "Still waiting for an update on my delivery"),
    "slow_support": ("Support was slow to reply", "Had to chase customer service several times",
                     "Nobody answered my email for days"),
    "product_quality": ("Item broke after a week", "Poor quality for the price", "Product not as described"),
}
NOTES_PER_CUSTOMER = 0.06
NOTE_AUTHORS = ("Hannah Price", "Tom Fletcher", "Priya Shah", "Owen Lloyd", "Maeve Doyle", "Sam Turner")
NOTE_TEXTS = ("Prefers phone contact", "Asked about a bulk discount for an office order", "VIP: handle with care",
              "Moved house, address updated", "Interested in the new garden range",
              "Complained about a late delivery, offered a voucher", "Asked for no marketing texts",
              "Trade customer, invoiced monthly", "Happy with the last order, may refer friends",
              "Wants to be told when the jacket is back in stock", "Paid by bank transfer this time",
              "Gift order, send without an invoice")

FEMALE_NAMES = ("Emma", "Olivia", "Amelia", "Isla", "Ava", "Sophie", "Grace", "Chloe", "Lucy", "Hannah", "Ella",
                "Mia", "Charlotte", "Emily", "Freya", "Sarah", "Laura", "Rachel", "Megan", "Niamh", "Aoife",
                "Siobhán", "Zoë", "Priya", "Aisha", "Fatima", "Anna", "Maria", "Joanna", "Claire", "Helen", "Julia",
                "Rebecca", "Katie", "Holly", "Jessica", "Eleanor", "Alice", "Ruth", "Nadia")
MALE_NAMES = ("Oliver", "George", "Harry", "Jack", "Jacob", "Noah", "Charlie", "Thomas", "Oscar", "William",
              "James", "Daniel", "Samuel", "Joseph", "Liam", "Ethan", "Lewis", "Ryan", "Adam", "Connor", "Seán",
              "Ciarán", "José", "Mohammed", "Omar", "Arjun", "Rohan", "Piotr", "Łukasz", "Matthew", "David",
              "Andrew", "Michael", "Peter", "Paul", "Mark", "Stephen", "Richard", "Ben", "Tom")
LAST_NAMES = ("Smith", "Jones", "Taylor", "Brown", "Williams", "Wilson", "Johnson", "Davies", "Robinson", "Wright",
              "Thompson", "Evans", "Walker", "White", "Roberts", "Green", "Hall", "Wood", "Jackson", "Clarke",
              "Patel", "Khan", "Lewis", "James", "Phillips", "Mason", "Mitchell", "Rose", "Murphy", "Kelly",
              "O'Brien", "Byrne", "Ryan", "O'Sullivan", "Walsh", "McCarthy", "Doyle", "Gallagher", "Kennedy",
              "Lynch", "Murray", "Quinn", "Moore", "Campbell", "Stewart", "Anderson", "Scott", "Morrison",
              "MacDonald", "Reid", "Fraser", "Hughes", "Edwards", "Morgan", "Griffiths", "Owen", "Price", "Lloyd",
              "Nowak", "Kowalski", "Müller", "Schmidt", "García", "Silva", "Santos", "Ahmed", "Hussain", "Begum",
              "Singh", "Kaur", "Chen", "Wang", "Nguyen", "Okafor", "Mensah", "Adeyemi", "Harris", "Martin", "Baker",
              "Turner", "Hill", "Cooper", "Ward", "Morris", "King", "Carter", "Parker", "Bennett", "Shaw", "Cook",
              "Bell", "Young", "Allen", "Watson", "Grant")
EMAIL_DOMAINS = ("example.com", "example.org", "example.net", "mail.example.com", "post.example.org")
PLACES = (  # country, region, city, postcode area (Irish: routing key; "D" = Dublin district), weight
    ("United Kingdom", "London", "London", "E", 3), ("United Kingdom", "London", "London", "N", 3),
    ("United Kingdom", "London", "London", "SE", 3), ("United Kingdom", "London", "London", "SW", 3),
    ("United Kingdom", "London", "London", "W", 3), ("United Kingdom", "London", "London", "NW", 3),
    ("United Kingdom", "South East", "Brighton", "BN", 3), ("United Kingdom", "South East", "Reading", "RG", 3),
    ("United Kingdom", "South East", "Oxford", "OX", 2), ("United Kingdom", "South East", "Canterbury", "CT", 2),
    ("United Kingdom", "South West", "Bristol", "BS", 4), ("United Kingdom", "South West", "Exeter", "EX", 2),
    ("United Kingdom", "South West", "Bath", "BA", 2), ("United Kingdom", "South West", "Plymouth", "PL", 2),
    ("United Kingdom", "Midlands", "Birmingham", "B", 5), ("United Kingdom", "Midlands", "Nottingham", "NG", 3),
    ("United Kingdom", "Midlands", "Leicester", "LE", 3), ("United Kingdom", "Midlands", "Coventry", "CV", 2),
    ("United Kingdom", "North West", "Manchester", "M", 5), ("United Kingdom", "North West", "Liverpool", "L", 4),
    ("United Kingdom", "North West", "Preston", "PR", 1), ("United Kingdom", "North West", "Chester", "CH", 1),
    ("United Kingdom", "North East", "Newcastle upon Tyne", "NE", 3),
    ("United Kingdom", "North East", "Sunderland", "SR", 1), ("United Kingdom", "North East", "Durham", "DH", 1),
    ("United Kingdom", "Yorkshire", "Leeds", "LS", 4), ("United Kingdom", "Yorkshire", "Sheffield", "S", 3),
    ("United Kingdom", "Yorkshire", "York", "YO", 2), ("United Kingdom", "Scotland", "Edinburgh", "EH", 3),
    ("United Kingdom", "Scotland", "Glasgow", "G", 4), ("United Kingdom", "Scotland", "Aberdeen", "AB", 1),
    ("United Kingdom", "Wales", "Cardiff", "CF", 3), ("United Kingdom", "Wales", "Swansea", "SA", 1),
    ("Ireland", "Leinster", "Dublin", "D", 6), ("Ireland", "Leinster", "Kilkenny", "R95", 1),
    ("Ireland", "Munster", "Cork", "T12", 2), ("Ireland", "Munster", "Limerick", "V94", 1),
    ("Ireland", "Connacht", "Galway", "H91", 1), ("Ireland", "Ulster", "Letterkenny", "F92", 1),
)
COUNTRY_CALLING_CODE = {"United Kingdom": "44", "Ireland": "353"}
ACQUISITION_CHANNELS = {"web": 0.30, "search": 0.20, "social": 0.15, "store": 0.25, "partner": 0.10}
WEB_REGISTERED_BY_CHANNEL = {"web": 0.8, "search": 0.75, "social": 0.7, "store": 0.3, "partner": 0.5,
                             "referral": 0.6}
INCOME_BANDS = {"<20k": 0.15, "20-40k": 0.30, "40-60k": 0.25, "60-100k": 0.20, "100k+": 0.10}

_STREAMS = ("customers", "purchases", "products", "campaigns", "returns", "tickets", "surveys", "notes")
_SECONDS_PER_DAY = 86_400


@dataclass(frozen=True)
class SampleData:
    """A generated data set: ``tables`` (one frame per canonical table, schema column order) and ``truth``.

    ``truth`` is JSON-serialisable: planted parameters, and per-customer facts as columnar lists of equal length.
    """

    tables: dict[str, pd.DataFrame]
    truth: dict


# --------------------------------------------------------------------------------------------------------------
# Small vectorised helpers
# --------------------------------------------------------------------------------------------------------------
def _ascii(text: str) -> str:
    text = text.replace("Ł", "L").replace("ł", "l").replace("'", "")
    return unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode("ascii").lower()


def _choice(rng: np.random.Generator, weights, size: int) -> np.ndarray:
    """Indices 0..len(weights)-1 drawn with the given (unnormalised) weights."""
    w = np.asarray(list(weights), dtype=float)
    return np.searchsorted(np.cumsum(w / w.sum()), rng.random(size), side="right").clip(0, len(w) - 1)


def _take(labels, idx: np.ndarray, null: np.ndarray | None = None) -> pa.Array:
    """``labels[idx]`` as an Arrow string array; rows where ``null`` is true are null."""
    return pa.array(list(labels), pa.string()).take(pa.array(np.asarray(idx, dtype=np.int64), mask=null))


def _num(values: np.ndarray, width: int = 0) -> pa.Array:
    """Integers as text, zero-padded to ``width``."""
    text = pc.cast(pa.array(np.asarray(values, dtype=np.int64)), pa.string())
    return pc.utf8_lpad(text, width=width, padding="0") if width else text


def _cat(*parts) -> pa.Array:
    """Element-wise concatenation of Arrow string arrays and Python strings (null if any part is null)."""
    return pc.binary_join_element_wise(*parts, "")


def _ids(prefix: str, numbers: np.ndarray, width: int) -> pa.Array:
    return _cat(prefix, _num(numbers, width))


def _str(values) -> pd.api.extensions.ExtensionArray:
    return pd.array(values, dtype="str")


def _segments(counts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """For groups of the given sizes laid end to end: each row's group and its position inside the group."""
    group = np.repeat(np.arange(len(counts)), counts)
    starts = np.cumsum(counts) - counts
    return group, np.arange(len(group)) - starts[group]


def _sig(values: np.ndarray, digits: int = 5) -> list:
    """Floats rounded to ``digits`` significant digits, as a JSON-friendly list (shortest repr survives)."""
    v = np.asarray(values, dtype=float)
    magnitude = np.floor(np.log10(np.abs(np.where((v == 0) | ~np.isfinite(v), 1.0, v))))
    power = (digits - 1 - magnitude).astype(np.int64)
    up = 10.0 ** np.maximum(power, 0)
    down = 10.0 ** np.maximum(-power, 0)
    return np.where(power >= 0, np.round(v * up) / up, np.round(v / down) * down).tolist()


def _grouped_permutation(group: np.ndarray, groups_in_order: np.ndarray) -> np.ndarray:
    """Rows reordered to follow ``groups_in_order``, keeping row order inside a group; ``group`` must not decrease.

    Linear time: the rows of the lines and shipments tables arrive grouped by order, so no sort is needed.
    """
    if len(group) and np.any(np.diff(group) < 0):
        raise AssertionError("rows are not grouped by their group index")
    counts = np.bincount(group, minlength=len(groups_in_order))
    first = np.cumsum(counts) - counts
    ordered = counts[groups_in_order]
    new_first = np.empty(len(groups_in_order), dtype=np.int64)
    new_first[groups_in_order] = np.cumsum(ordered) - ordered
    perm = np.empty(len(group), dtype=np.int64)
    perm[new_first[group] + np.arange(len(group)) - first[group]] = np.arange(len(group))
    return perm


@dataclass(frozen=True)
class _Clock:
    """Time as float days since ``origin`` (midnight ``years`` before the day after ``as_of``)."""

    origin: np.datetime64
    end: float  # exclusive: the first instant after as_of

    def ts(self, t: np.ndarray) -> np.ndarray:
        t = np.asarray(t, dtype=float)
        bad = ~np.isfinite(t)
        secs = np.floor(np.where(bad, 0.0, t) * _SECONDS_PER_DAY).astype(np.int64)
        out = self.origin + secs.astype("timedelta64[s]")
        out[bad] = np.datetime64("NaT")
        return out

    def date(self, t: np.ndarray) -> np.ndarray:
        t = np.asarray(t, dtype=float)
        return self.ts(np.floor(t))

    def iso_date(self, t: np.ndarray) -> np.ndarray:
        return np.datetime_as_string(self.date(t), unit="D")

    def day_of(self, d: dt.date) -> float:
        return float((np.datetime64(d, "s") - self.origin) / np.timedelta64(1, "D"))


# --------------------------------------------------------------------------------------------------------------
# Customers
# --------------------------------------------------------------------------------------------------------------
@dataclass
class _People:
    n: int
    t0: np.ndarray  # sign-up time (days), increasing with the row
    is_dup: np.ndarray
    original: np.ndarray  # for duplicates: row of the original customer; -1 otherwise
    dup_kind: np.ndarray  # 0 email, 1 phone, 2 name + postcode; -1 otherwise
    web: np.ndarray
    referrer: np.ndarray  # row of the referrer or -1
    influencers: np.ndarray
    columns: dict


def _customers(rng: np.random.Generator, n: int, clock: _Clock, as_of: dt.date) -> _People:
    span = clock.end
    growth = np.log(ACQUISITION_GROWTH) / span
    t0 = np.log1p(np.sort(rng.random(n)) * np.expm1(growth * span)) / growth
    row = np.arange(n)

    # duplicates: later rows copying an earlier primary customer
    n_dup = int(round(DUPLICATE_SHARE * n))
    low = max(10, n // 20)
    is_dup = np.zeros(n, dtype=bool)
    if n_dup:
        is_dup[rng.choice(np.arange(low, n), size=n_dup, replace=False)] = True
    primary_rows = np.flatnonzero(~is_dup)
    primaries_before = np.cumsum(~is_dup) - (~is_dup)
    original = np.full(n, -1)
    dup_rows = np.flatnonzero(is_dup)
    original[dup_rows] = primary_rows[(rng.random(n_dup) * primaries_before[dup_rows]).astype(np.int64)]
    dup_kind = np.full(n, -1)
    dup_kind[dup_rows] = rng.integers(0, 3, n_dup)

    # people
    gender_idx = _choice(rng, (0.49, 0.48, 0.03), n)  # F, M, unknown
    female = rng.integers(0, len(FEMALE_NAMES), n)
    male = rng.integers(0, len(MALE_NAMES), n)
    use_female = (gender_idx == 0) | ((gender_idx == 2) & (rng.random(n) < 0.5))
    first_idx = np.where(use_female, female, len(FEMALE_NAMES) + male)
    last_idx = rng.integers(0, len(LAST_NAMES), n)
    place = _choice(rng, [p[4] for p in PLACES], n)
    birth_year = np.clip(np.round(rng.normal(1981, 14, n)), 1935, as_of.year - 18).astype(np.int64)
    has_birth = rng.random(n) > 0.04
    income = _choice(rng, INCOME_BANDS.values(), n)
    has_income = rng.random(n) > 0.10
    district = rng.integers(1, 21, n)
    has_phone = rng.random(n) > 0.05
    email_pattern = rng.integers(0, 4, n)
    email_domain = rng.integers(0, len(EMAIL_DOMAINS), n)
    inward_digit = rng.integers(0, 10, n)
    letters = "ABDEFGHJLNPQRSTUWXYZ"
    inward_l1 = rng.integers(0, len(letters), n)
    inward_l2 = rng.integers(0, len(letters), n)
    ie_mobile_digit = rng.integers(0, 5, n)
    acq = _choice(rng, ACQUISITION_CHANNELS.values(), n)

    # duplicates copy the person from their original; name-type duplicates get a typo later
    for arr in (gender_idx, first_idx, last_idx, place, birth_year, has_birth, income, has_income, district,
                inward_digit, inward_l1, inward_l2, ie_mobile_digit):
        arr[dup_rows] = arr[original[dup_rows]]
    phone_dup = dup_rows[dup_kind[dup_rows] == 1]
    dup_kind[phone_dup[~has_phone[original[phone_dup]]]] = 0  # no phone to copy: make it an e-mail duplicate
    has_phone[dup_rows] = has_phone[original[dup_rows]]
    name_dup = dup_rows[dup_kind[dup_rows] == 2]
    has_phone[name_dup] = rng.random(len(name_dup)) < 0.5

    # referrals among primaries: a uniformly chosen earlier primary, or an early "influencer"
    day = np.floor(t0)
    referrer = np.full(n, -1)
    n_prim = len(primary_rows)
    n_infl = max(3, int(round(INFLUENCERS_PER_1000 * n_prim / 1000)))
    early = primary_rows[: max(n_infl, n_prim // 4)]
    influencers = np.sort(rng.choice(early, size=min(n_infl, len(early)), replace=False))
    referred = primary_rows[rng.random(n_prim) < REFERRAL_SHARE]
    prim_days = day[primary_rows]
    n_earlier = np.searchsorted(prim_days, day[referred], side="left")
    pick = primary_rows[np.minimum((rng.random(len(referred)) * n_earlier).astype(np.int64), n_prim - 1)]
    n_infl_earlier = np.searchsorted(day[influencers], day[referred], side="left")
    via_infl = (rng.random(len(referred)) < INFLUENCER_SHARE_OF_REFERRALS) & (n_infl_earlier > 0)
    infl_pick = influencers[np.minimum((rng.random(len(referred)) * n_infl_earlier).astype(np.int64),
                                       len(influencers) - 1)]
    pick = np.where(via_infl, infl_pick, pick)
    ok = n_earlier > 0
    referrer[referred[ok]] = pick[ok]
    is_referred = referrer >= 0

    acq_labels = [*ACQUISITION_CHANNELS, "referral"]
    acq = np.where(is_referred, len(acq_labels) - 1, acq)
    web_p = np.array([WEB_REGISTERED_BY_CHANNEL[c] for c in acq_labels])[acq]
    web = rng.random(n) < web_p
    web[dup_rows[dup_kind[dup_rows] == 0]] = True  # re-registered online with the same e-mail

    # text columns
    first_names = (*FEMALE_NAMES, *MALE_NAMES)
    first = _take(first_names, first_idx)
    last = _take(LAST_NAMES, last_idx)
    last = _typo(last, name_dup, rng)
    name = _cat(first, " ", last)

    # unique e-mail suffix and phone numbers from bijections of the row number (name-type duplicates get new ones)
    key = np.where(dup_kind == 2, n + row, row)
    modulus = 10 ** max(4, len(str(2 * n)))
    suffix = _num((key * 7_777_777 + 12_345) % modulus)
    fa = _take([_ascii(x) for x in first_names], first_idx)
    la = _take([_ascii(x) for x in LAST_NAMES], last_idx)
    local = pc.if_else(email_pattern == 0, _cat(fa, ".", la), pc.if_else(
        email_pattern == 1, _cat(fa, la), pc.if_else(email_pattern == 2, _cat(pc.utf8_slice_codeunits(fa, 0, 1), la),
                                                     _cat(fa, "_", la))))
    email = _cat(local, suffix, "@", _take(EMAIL_DOMAINS, email_domain))
    email = _email_variants(email, is_dup, original, dup_kind, rng)

    is_ie = np.array([p[0] == "Ireland" for p in PLACES])[place]
    uk_nat = _cat("7", _num((key * 387_420_489 + 1_234_567) % 10**9, 9))
    ie_nat = _cat("8", _take(("3", "5", "6", "7", "9"), ie_mobile_digit),
                  _num((key * 4_782_969 + 123_457) % 10**7, 7))
    nat = pc.if_else(is_ie, ie_nat, uk_nat)
    cc = pc.if_else(is_ie, "353", "44")
    uk_phone = _cat("+", cc, " ", pc.utf8_slice_codeunits(nat, 0, 4), " ", pc.utf8_slice_codeunits(nat, 4))
    ie_phone = _cat("+", cc, " ", pc.utf8_slice_codeunits(nat, 0, 2), " ", pc.utf8_slice_codeunits(nat, 2, 5), " ",
                    pc.utf8_slice_codeunits(nat, 5))
    phone = pc.if_else(is_ie, ie_phone, uk_phone)
    phone_rows = phone_dup[dup_kind[phone_dup] == 1]
    phone = _phone_variants(phone, nat, cc, phone_rows, original[phone_rows], rng)
    phone = pc.if_else(pa.array(has_phone), phone, pa.scalar(None, pa.string()))

    area = _take([p[3] for p in PLACES], place)
    uk_post = _cat(area, _num(district), " ", _num(inward_digit), _take(letters, inward_l1),
                   _take(letters, inward_l2))
    dublin = np.array([p[3] == "D" for p in PLACES])[place]
    ie_out = pc.if_else(dublin, _cat("D", _num(district, 2)), area)
    ie_post = _cat(ie_out, " ", _take(letters, inward_l1), _num(inward_digit), _num(district, 2))
    postcode = pc.if_else(is_ie, ie_post, uk_post)

    age = as_of.year - birth_year - (rng.random(n) < 0.5)
    n_width = max(5, len(str(n)))
    columns = {
        "customer_id": _ids("C", row + 1, n_width),
        "name": name,
        "first_name": first,
        "last_name": last,
        "email": email,
        "phone": phone,
        "signup_date": clock.date(t0),
        "country": _take([p[0] for p in PLACES], place),
        "region": _take([p[1] for p in PLACES], place),
        "city": _take([p[2] for p in PLACES], place),
        "postcode": postcode,
        "acquisition_channel": _take(acq_labels, acq),
        "gender": _take(("F", "M", "F"), gender_idx, null=gender_idx == 2),
        "birth_year": pd.array(np.where(has_birth, birth_year, 0), dtype="Int64"),
        "age": pd.array(np.where(has_birth, age, 0), dtype="Int64"),
        "income_band": _take(INCOME_BANDS, income, null=~has_income),
        "is_web_registered": web,
        "referred_by": None,  # filled in once ids exist
    }
    columns["birth_year"][~has_birth] = pd.NA
    columns["age"][~has_birth] = pd.NA
    ids = columns["customer_id"]
    columns["referred_by"] = ids.take(pa.array(np.maximum(referrer, 0), mask=referrer < 0))
    return _People(n, t0, is_dup, original, dup_kind, web, referrer, influencers, columns)


def _typo(last: pa.Array, rows: np.ndarray, rng: np.random.Generator) -> pa.Array:
    """One-letter typos in ``last`` at ``rows``: deletion, doubling, swap of letters 2-3, or a changed vowel."""
    if not len(rows):
        return last
    s = last.take(pa.array(rows))
    sl = pc.utf8_slice_codeunits
    deletion = _cat(sl(s, 0, 2), sl(s, 3))
    doubling = _cat(sl(s, 0, 3), sl(s, 2))
    swap = _cat(sl(s, 0, 1), sl(s, 2, 3), sl(s, 1, 2), sl(s, 3))
    swap = pc.if_else(pc.equal(swap, s), deletion, swap)
    vowel = _cat(sl(s, 0, 3), pc.if_else(pc.equal(sl(s, 3, 4), "e"), "a", "e"), sl(s, 4))
    op = rng.integers(0, 4, len(rows))
    typo = pc.if_else(op == 0, deletion, pc.if_else(op == 1, doubling, pc.if_else(op == 2, swap, vowel)))
    return _scatter(last, rows, typo)


def _scatter(values: pa.Array, rows: np.ndarray, new: pa.Array) -> pa.Array:
    """``values`` with ``values[rows] = new``."""
    mapping = np.full(len(values), -1)
    mapping[rows] = np.arange(len(rows))
    picked = new.take(pa.array(np.maximum(mapping, 0)))
    return pc.if_else(pa.array(mapping >= 0), picked, values)


def _email_variants(email: pa.Array, is_dup, original, dup_kind, rng) -> pa.Array:
    """Duplicates copy their original's e-mail (kind 0: same address, different case or spaces)."""
    rows = np.flatnonzero(is_dup & (dup_kind == 0))
    if not len(rows):
        return email
    src = email.take(pa.array(original[rows]))
    variant = rng.integers(0, 4, len(rows))
    title = pc.utf8_title(src)
    new = pc.if_else(variant == 0, pc.utf8_upper(src), pc.if_else(
        variant == 1, _cat(" ", src, " "), pc.if_else(variant == 2, title, _cat(title, "  "))))
    return _scatter(email, rows, new)


def _phone_variants(phone: pa.Array, nat: pa.Array, cc: pa.Array, rows: np.ndarray, originals: np.ndarray,
                    rng) -> pa.Array:
    """Phone duplicates: their original's number written another way (national, +CC, 00CC, brackets)."""
    if not len(rows):
        return phone
    n = nat.take(pa.array(originals))
    c = cc.take(pa.array(originals))
    sl = pc.utf8_slice_codeunits
    variant = rng.integers(0, 4, len(rows))
    new = pc.if_else(variant == 0, _cat("0", n), pc.if_else(
        variant == 1, _cat("+", c, n), pc.if_else(variant == 2, _cat("00", c, " ", n),
                                                  _cat("(0", sl(n, 0, 4), ") ", sl(n, 4)))))
    return _scatter(phone, rows, new)


# --------------------------------------------------------------------------------------------------------------
# Purchases: BG/NBD times, Gamma-Gamma values, baskets and shipments
# --------------------------------------------------------------------------------------------------------------
def _bgnbd(rng: np.random.Generator, t0: np.ndarray, end: float):
    """Repeat-purchase times for customers born at ``t0`` (days): (λ, p, repeats per customer, times, dead).

    Given N ~ Poisson(λT) arrivals on (0, T] and dropout after the J-th (J ~ Geometric(p)), the customer makes
    min(N, J) repeat purchases, distributed as the first order statistics of N uniforms; they are drawn as
    normalised exponential spacings so nothing is sorted.
    """
    n = len(t0)
    lam = rng.gamma(BGNBD["r"], 1.0 / BGNBD["alpha"], n)
    p = np.clip(rng.beta(BGNBD["a"], BGNBD["b"], n), 1e-9, 1.0)
    span = end - t0
    arrivals = rng.poisson(lam * span / 7.0)
    j = rng.geometric(p)
    x = np.minimum(arrivals, j)
    dead = j <= arrivals
    spacings = np.cumsum(rng.standard_exponential(int(x.sum())))
    ends = np.cumsum(x)
    starts = ends - x
    before = np.zeros(n)
    before[starts > 0] = spacings[starts[starts > 0] - 1]
    total = np.zeros(n)
    total[x > 0] = spacings[ends[x > 0] - 1] - before[x > 0]
    denom = total + rng.standard_gamma(arrivals - x + 1.0)
    times = np.repeat(t0, x) + (spacings - np.repeat(before, x)) / np.repeat(denom, x) * np.repeat(span, x)
    return lam, p, x, times, dead


class _Columns:
    """Parallel arrays, one element per row; subclasses are dataclasses naming the arrays."""

    def take(self, rows: np.ndarray):
        return type(self)(**{f.name: getattr(self, f.name)[rows] for f in fields(self)})

    def extend(self, other) -> None:
        for f in fields(self):
            setattr(self, f.name, np.concatenate([getattr(self, f.name), getattr(other, f.name)]))

    def __len__(self) -> int:
        return len(getattr(self, fields(self)[0].name))


@dataclass
class _Purchases(_Columns):
    owner: np.ndarray  # customer row
    t: np.ndarray  # days since the clock's origin
    cents: np.ndarray  # amount in pence: the sum of the lines
    target: np.ndarray  # the Gamma-Gamma value in pence the basket was built for
    channel: np.ndarray  # index into ORDER_CHANNELS
    source: np.ndarray  # 0 purchase process, 1 a duplicate record's sign-up order, 2 campaign conversion


@dataclass
class _Lines(_Columns):
    order: np.ndarray  # purchase index (or return index for return lines)
    line: np.ndarray  # 1, 2, ...
    product: np.ndarray
    qty: np.ndarray
    unit: np.ndarray  # pence
    discount: np.ndarray  # pence: (list price - unit price) x quantity


@dataclass
class _Shipments(_Columns):
    order: np.ndarray  # purchase index
    carrier: np.ndarray
    promised: np.ndarray  # day number
    shipped: np.ndarray  # time; nan if not shipped by as_of
    delivered: np.ndarray  # time; nan if not delivered by as_of
    cents: np.ndarray
    late: np.ndarray  # delivered, on a day after the promised day


def _products(rng) -> tuple[dict, np.ndarray]:
    """The catalogue's columns, and list prices in pence (N_PRODUCTS products, prices ending in .99)."""
    cats = list(CATEGORIES)
    cat = np.repeat(np.arange(len(cats)), N_PRODUCTS // len(cats))
    lo, hi, margin = (np.array([CATEGORIES[c][i] for c in cats])[cat] for i in range(3))
    pounds = np.floor(np.exp(rng.uniform(np.log(lo), np.log(hi))))
    price = (np.maximum(pounds, 1) * 100 - 1).astype(np.int64)
    cost = np.round(price * (1 - margin * rng.uniform(0.85, 1.15, len(cat)))).astype(np.int64)
    noun = rng.integers(0, 5, len(cat))
    adjective = rng.integers(0, len(PRODUCT_ADJECTIVES), len(cat))
    nouns = [noun for c in cats for noun in PRODUCT_NOUNS[c]]
    columns = {
        "product_id": _ids("P", np.arange(1, len(cat) + 1), 4),
        "product_name": _cat(_take(PRODUCT_ADJECTIVES, adjective), " ", _take(nouns, cat * 5 + noun)),
        "category": _take(cats, cat),
        "list_price": price / 100,
        "unit_cost": cost / 100,
    }
    return columns, price


def _basket(rng, target: np.ndarray, price: np.ndarray, offset: int) -> tuple[_Lines, np.ndarray]:
    """Lines for orders worth about ``target`` pence each; returns the lines and each order's exact amount.

    Each line aims at a share of the target; its product is the one whose list price is nearest (in ratio) the
    line's unit target before the line's discount (none on 70% of lines, else 10-25%). The amount is the sum of
    quantity x unit price, so it is the Gamma-Gamma target give or take a few percent.
    """
    by_price = np.argsort(price, kind="stable")
    log_price = np.log(price[by_price])
    n = len(target)
    k = 1 + np.minimum(rng.poisson(0.9, n), 5)
    k = np.minimum(k, np.maximum(1, target // 1000))
    k = np.maximum(k, np.ceil(target / price.max()).astype(np.int64))
    order, line = _segments(k)
    m = len(order)
    weight = rng.gamma(2.0, 1.0, m)
    value = target[order] * weight / np.add.reduceat(weight, np.cumsum(k) - k)[order]
    qty = np.array([1, 2, 3])[_choice(rng, (0.80, 0.14, 0.06), m)]
    qty = np.where(value / qty < price.min(), 1, qty)
    rate = np.array([0.0, 0.10, 0.15, 0.20, 0.25])[_choice(rng, (0.70, 0.10, 0.08, 0.07, 0.05), m)]
    want = np.log(value / qty / (1 - rate))
    upper = np.minimum(np.searchsorted(log_price, want), len(price) - 1)
    lower = np.maximum(upper - 1, 0)
    nearest = np.where(want - log_price[lower] < log_price[upper] - want, lower, upper)
    product = by_price[nearest]
    unit = np.round(price[product] * (1 - rate)).astype(np.int64)
    lines = _Lines(order + offset, line + 1, product, qty, unit, (price[product] - unit) * qty)
    return lines, np.bincount(order, weights=qty * unit, minlength=n).astype(np.int64)


def _order_channel(rng, web: np.ndarray) -> np.ndarray:
    u = rng.random(len(web))
    share_web, share_store, _ = (np.where(web, WEB_ORDER_SHARE[True][i], WEB_ORDER_SHARE[False][i])
                                 for i in range(3))
    return np.where(u < share_web, 0, np.where(u < share_web + share_store, 1, 2))


def _opening_hours(t: np.ndarray, channel: np.ndarray) -> np.ndarray:
    """Times moved, keeping their day and their order within the day, into 07:00-23:00 (stores 09:00-18:00)."""
    store = channel == ORDER_CHANNELS.index("store")
    opens, hours = np.where(store, 9.0, 7.0), np.where(store, 9.0, 16.0)
    return np.floor(t) + (opens + (t - np.floor(t)) * hours) / 24


def _ship(rng, t_order: np.ndarray, channel: np.ndarray, offset: int, end: float) -> _Shipments:
    """Shipments for the web and phone orders among ``t_order`` (5% ship in two); ``offset`` is added to indices.

    Ships 0.1-1 day after the order; promised on the order day + the carrier's transit days; on time means
    delivered between the day after shipping and the promised day, late means 1+ days after it.
    """
    orders = np.flatnonzero(channel != ORDER_CHANNELS.index("store"))
    carrier_of_order = _choice(rng, [c[0] for c in CARRIERS.values()], len(orders))
    which, seq = _segments(1 + (rng.random(len(orders)) < SPLIT_SHIPMENT_SHARE))
    order = orders[which]
    carrier = carrier_of_order[which]
    late_p, promise, cost = (np.array([c[i] for c in CARRIERS.values()])[carrier] for i in (1, 2, 3))
    m = len(order)
    shipped = t_order[order] + rng.uniform(0.1, 1.0, m) + seq * rng.uniform(1.0, 3.0, m)
    promised = np.where(seq == 0, np.floor(t_order[order]), np.floor(shipped)) + promise
    late = rng.random(m) < late_p
    earliest = np.floor(shipped) + 1
    on_time_day = earliest + np.floor(rng.random(m) * (promised - earliest + 1))
    late_day = promised + rng.geometric(0.45, m)
    delivered = np.where(late, late_day, on_time_day) + rng.uniform(8 / 24, 20 / 24, m)
    cents = np.round(cost * 100 * np.clip(rng.normal(1.0, 0.08, m), 0.7, 1.3)).astype(np.int64)
    shipped = np.where(shipped < end, shipped, np.nan)
    delivered = np.where((delivered < end) & ~np.isnan(shipped), delivered, np.nan)
    return _Shipments(order + offset, carrier, promised, shipped, delivered, cents, late & ~np.isnan(delivered))


def _new_purchases(rng, owner, t, channel, source, nu, price, end, offset):
    """Purchases with Gamma-Gamma targets turned into baskets, and their shipments."""
    target = np.maximum(100, np.round(rng.standard_gamma(GAMMA_GAMMA["p"], len(owner)) / nu[owner] * 100))
    target = target.astype(np.int64)
    lines, cents = _basket(rng, target, price, offset)
    ships = _ship(rng, t, channel, offset, end)
    return _Purchases(owner, t, cents, target, channel, np.full(len(owner), source)), lines, ships


@dataclass
class _History:
    """Everything bought, per purchase, plus the per-customer life story behind it."""

    buys: _Purchases
    lines: _Lines
    ships: _Shipments
    lam: np.ndarray  # per primary customer (truth order)
    pdrop: np.ndarray
    nu: np.ndarray  # per customer row
    is_dead: np.ndarray  # per customer row; duplicate records are not dead, just unused
    late_dropout: np.ndarray  # per customer row: a late delivery ended their purchases
    last_buy: np.ndarray  # per customer row, before campaigns (for the dead: their dropout)
    alive_until: np.ndarray  # per customer row: +inf alive, dropout time if dead, -inf duplicate record


def _history(rng, people: _People, price: np.ndarray, clock: _Clock) -> _History:
    """Sign-up orders and BG/NBD repeat purchases with lines and shipments; late deliveries end some customers."""
    end, n = clock.end, people.n
    prim = np.flatnonzero(~people.is_dup)
    lam, pdrop, x, rep_t, dead = _bgnbd(rng, people.t0[prim], end)
    local, pos = _segments(1 + x)
    t = np.empty(len(local))
    t[pos == 0] = people.t0[prim]
    t[pos > 0] = rep_t
    dup_rows = np.flatnonzero(people.is_dup)
    dup_buyers = dup_rows[rng.random(len(dup_rows)) < DUPLICATE_ORDER_SHARE]
    nu = rng.gamma(GAMMA_GAMMA["q"], 1.0 / GAMMA_GAMMA["gamma"], n)
    owner = np.concatenate([prim[local], dup_buyers])
    channel = _order_channel(rng, people.web[owner])
    t = _opening_hours(np.concatenate([t, people.t0[dup_buyers]]), channel)
    buys, lines, ships = _new_purchases(rng, owner, t, channel, 0, nu, price, end, 0)
    buys.source[len(local):] = 1

    # after a late delivery the customer stops buying with LATE_DROPOUT_PROBABILITY: later purchases vanish
    trigger = ships.late & (rng.random(len(ships)) < LATE_DROPOUT_PROBABILITY) & ~people.is_dup[owner[ships.order]]
    cut = np.full(n, np.inf)
    np.minimum.at(cut, buys.owner[ships.order[trigger]], ships.delivered[trigger])
    keep = buys.t <= cut[buys.owner]
    lost = np.bincount(buys.owner[~keep], minlength=n) > 0
    new_index = np.cumsum(keep) - 1
    buys = buys.take(keep)
    lines = lines.take(keep[lines.order])
    lines.order = new_index[lines.order]
    ships = ships.take(keep[ships.order])
    ships.order = new_index[ships.order]

    last_buy = np.full(n, -np.inf)
    np.maximum.at(last_buy, buys.owner, buys.t)
    bg_dead = np.zeros(n, dtype=bool)
    bg_dead[prim] = dead
    late_dropout = np.isfinite(cut) & (~bg_dead | lost)
    is_dead = bg_dead | late_dropout
    alive_until = np.where(is_dead, last_buy, np.inf)
    alive_until[people.is_dup] = -np.inf
    return _History(buys, lines, ships, lam, pdrop, nu, is_dead, late_dropout, last_buy, alive_until)


@dataclass
class _Returns:
    purchase: np.ndarray  # index of the returned purchase
    t: np.ndarray
    cents: np.ndarray  # negative
    lines: _Lines  # order = return index; negative quantities


def _returns(rng, buys: _Purchases, lines: _Lines, end: float) -> _Returns:
    """Each purchase is returned with RETURN_PROBABILITY 2-30 days later: all its lines, or its last line."""
    returned = np.flatnonzero(rng.random(len(buys)) < RETURN_PROBABILITY)
    t = buys.t[returned] + rng.uniform(2.0, 30.0, len(returned))
    returned, t = returned[t < end], t[t < end]
    full = rng.random(len(returned)) < 0.5
    ret_of = np.full(len(buys), -1)
    ret_of[returned] = np.arange(len(returned))
    r = ret_of[lines.order]
    n_lines = np.bincount(lines.order, minlength=len(buys))
    whole = np.zeros(len(r), dtype=bool)
    whole[r >= 0] = full[r[r >= 0]]
    picked = lines.take((r >= 0) & (whole | (lines.line == n_lines[lines.order])))
    index = ret_of[picked.order]
    back = _Lines(index, np.where(full[index], picked.line, 1), picked.product, -picked.qty, picked.unit,
                  np.zeros(len(index), dtype=np.int64))
    cents = np.bincount(index, weights=back.qty * back.unit, minlength=len(returned)).astype(np.int64)
    return _Returns(returned, t, cents, back)


# --------------------------------------------------------------------------------------------------------------
# Campaigns
# --------------------------------------------------------------------------------------------------------------
def _campaigns(rng, people: _People, hist: _History, price: np.ndarray, clock: _Clock):
    """Run the campaigns in date order, adding conversion orders to ``hist``; returns (campaigns, contacts, truth).

    Targets follow TARGET_RULES on the purchases so far; a contact converts only if the customer is alive through
    the conversion window, and the conversion is a real order within CONVERSION_WINDOW_DAYS of contacted_at.
    """
    n = people.n
    buys = hist.buys
    usable = clock.end - 45.0
    rows, contacts, truth = [], [], {}
    is_primary = ~people.is_dup
    for k, spec in enumerate(CAMPAIGNS, start=1):
        start = float(np.floor(spec["at"] * usable))
        before = buys.t < start
        count = np.bincount(buys.owner[before], minlength=n)
        last = np.full(n, -np.inf)
        np.maximum.at(last, buys.owner[before], buys.t[before])
        signed = people.t0 < start
        active = signed & (last >= start - 365)
        rule = spec["rule"]
        if rule == "new":
            eligible = signed & (people.t0 >= start - 90)
        elif rule == "active":
            eligible = active
        elif rule == "lapsed":
            eligible = signed & (last < start - 180) & (last >= start - 540)
        elif rule == "high_value":
            spend = np.bincount(buys.owner[before], weights=buys.cents[before], minlength=n)
            cut = np.quantile(spend[active], 0.8) if active.any() else np.inf
            eligible = active & (spend >= cut)
        else:
            eligible = signed
        cust = np.flatnonzero(eligible & (rng.random(n) < spec["share"]))
        m = len(cust)
        channel = spec["channel"]
        funnel = CHANNEL_FUNNEL[channel]
        experiment = bool(spec.get("experiment"))
        control = experiment & (rng.random(m) < EXPERIMENT["control_share"])
        contacted = start + 8 / 24 + rng.random(m) * 1.5
        sent = ~control & ((rng.random(m) < funnel["sent"]) | experiment)
        can_buy = is_primary[cust] & (hist.alive_until[cust] > contacted + CONVERSION_WINDOW_DAYS)
        campaign_id = f"CMP{k:02d}"
        if experiment:
            persuadable = people.web[cust] & (count[cust] >= EXPERIMENT["persuadable_min_orders"])
            prob, info = _experiment_probabilities(can_buy, persuadable, control)
            truth = {"campaign_id": campaign_id, **info,
                     "persuadable_rule": (f"is_web_registered and at least {EXPERIMENT['persuadable_min_orders']} "
                                          "purchases (is_return false) before the campaign start_date"),
                     "persuadable_row": cust[persuadable], "n_control": int(control.sum()),
                     "n_treatment": int((~control).sum()), "control_share": EXPERIMENT["control_share"]}
        else:
            prob = np.where(sent & can_buy, funnel["converted"], 0.0)
        converted = rng.random(m) < prob
        opened = (sent & (rng.random(m) < funnel["opened"])) | (converted & ~control)
        clicked = (opened & (rng.random(m) < funnel["clicked"])) | (converted & ~control)
        responded = (clicked & (rng.random(m) < funnel["responded"])) | (converted & ~control)
        buyers = cust[converted]
        t_buy = contacted[converted] + rng.uniform(0.02, CONVERSION_WINDOW_DAYS, len(buyers))
        web_share = 0.5 if channel == "direct mail" else 0.85
        u = rng.random(len(buyers))
        order_channel = np.where(u < web_share, 0, np.where(u < web_share + (1 - web_share) * 0.6, 1, 2))
        first_new = len(buys)
        new = _new_purchases(rng, buyers, t_buy, order_channel, 2, hist.nu, price, clock.end, first_new)
        for part, more in zip((hist.buys, hist.lines, hist.ships), new):
            part.extend(more)
        revenue = np.zeros(m, dtype=np.int64)
        revenue[converted] = new[0].cents
        order_ref = np.full(m, -1)
        order_ref[converted] = first_new + np.arange(len(buyers))
        contact_cents = np.where(sent, int(round(CONTACT_COST[channel] * 100)), 0)
        contacts.append({"campaign": np.full(m, k - 1), "customer": cust, "control": control, "contacted": contacted,
                         "sent": sent, "opened": opened, "clicked": clicked, "responded": responded,
                         "converted": converted, "revenue": revenue, "cost": contact_cents, "order": order_ref})
        rows.append({"campaign_id": campaign_id, "campaign_name": spec["name"], "channel": channel,
                     "start": start, "end": start + spec["days"] - 1,
                     "cost": CAMPAIGN_FIXED_COST[channel] + contact_cents.sum() / 100,
                     "target_segment": TARGET_RULES[rule], "offer": spec["offer"]})
    merged = {key: np.concatenate([c[key] for c in contacts]) for key in contacts[0]}
    return rows, merged, truth


def _experiment_probabilities(can_buy, persuadable, control):
    """Per-contact conversion probabilities whose means over the targeted are exactly the planted rates.

    Customers who cannot buy (dead, or duplicate records) convert with probability 0, so the rates of those who
    can are scaled up by the share who can. The lift sits on persuadables; the rest get what keeps the mean lift.
    """
    m = len(can_buy)
    share_can = can_buy.mean() if m else 1.0
    s = persuadable.mean() if m else 0.0
    total_lift = EXPERIMENT["treatment_conversion"] - EXPERIMENT["control_conversion"]
    lift_p = EXPERIMENT["persuadable_lift"]
    lift_rest = (total_lift - lift_p * s) / (1 - s) if s < 1 else 0.0
    if lift_rest < 0:
        lift_rest, lift_p = 0.0, total_lift / s
    can_p = (can_buy & persuadable).sum() / max(persuadable.sum(), 1)
    can_r = (can_buy & ~persuadable).sum() / max((~persuadable).sum(), 1)
    base = np.where(can_buy, EXPERIMENT["control_conversion"] / max(share_can, 1e-9), 0.0)
    uplift = np.where(persuadable, lift_p / max(can_p, 1e-9), lift_rest / max(can_r, 1e-9)) * can_buy
    prob = np.clip(base + np.where(control, 0.0, uplift), 0, 1)
    info = {"control_conversion": EXPERIMENT["control_conversion"],
            "treatment_conversion": EXPERIMENT["treatment_conversion"], "absolute_lift": round(total_lift, 6),
            "persuadable_lift": round(float(lift_p), 6), "other_lift": round(float(lift_rest), 6),
            "persuadable_share": round(float(s), 6)}
    return prob, info


# --------------------------------------------------------------------------------------------------------------
# Support tickets and surveys
# --------------------------------------------------------------------------------------------------------------
def _tickets(rng, people, alive_until, ships: _Shipments, ship_owner, ret_owner, ret_t, clock: _Clock):
    end = clock.end
    prim = np.flatnonzero(~people.is_dup)
    until = np.minimum(end, alive_until[prim] + 90)
    n_base = rng.poisson(BASELINE_TICKETS_PER_YEAR / 365.25 * np.maximum(until - people.t0[prim], 0))
    base_owner = np.repeat(prim, n_base)
    base_t = np.repeat(people.t0[prim], n_base) + rng.random(len(base_owner)) * np.repeat(
        until - people.t0[prim], n_base)
    cat_labels = [*BASELINE_TICKET_CATEGORIES, "late delivery"]
    base_cat = _choice(rng, BASELINE_TICKET_CATEGORIES.values(), len(base_owner))

    delivered = ~np.isnan(ships.delivered)
    p_ticket = np.where(ships.late, TICKET_AFTER_LATE, TICKET_AFTER_ON_TIME)
    hit = delivered & (rng.random(len(p_ticket)) < p_ticket)
    del_owner = ship_owner[hit]
    del_t = ships.delivered[hit] + np.minimum(rng.exponential(2.0, hit.sum()), TICKET_WINDOW_DAYS - 0.5)
    del_cat = np.where(ships.late[hit], len(cat_labels) - 1, cat_labels.index("delivery"))

    hit_r = rng.random(len(ret_t)) < TICKET_AFTER_RETURN
    r_owner = ret_owner[hit_r]
    r_t = ret_t[hit_r] + rng.uniform(0.0, 3.0, hit_r.sum())
    r_cat = np.full(hit_r.sum(), cat_labels.index("returns"))

    owner = np.concatenate([base_owner, del_owner, r_owner])
    created = np.concatenate([base_t, del_t, r_t])
    cat = np.concatenate([base_cat, del_cat, r_cat])
    keep = created < end
    owner, created, cat = owner[keep], created[keep], cat[keep]
    sort = np.argsort(created, kind="stable")
    owner, created, cat = owner[sort], created[sort], cat[sort]
    m = len(owner)

    channel = _choice(rng, TICKET_CHANNELS.values(), m)
    prio_w = np.tile(np.array(list(PRIORITIES.values())), (m, 1))
    urgentish = (cat == len(cat_labels) - 1) | (cat == cat_labels.index("complaint"))
    prio_w[urgentish] = (0.10, 0.40, 0.35, 0.15)
    prio = (rng.random(m)[:, None] > np.cumsum(prio_w, axis=1)).sum(axis=1).clip(0, 3)
    sla_h = np.array([SLA_FIRST_RESPONSE_HOURS[p] for p in PRIORITIES])[prio]
    median = np.array([RESPONSE_MEDIAN_SHARE_OF_SLA[c] for c in TICKET_CHANNELS])[channel]
    response_h = sla_h * median * np.exp(rng.normal(0, 0.7, m))
    first = created + response_h / 24
    breached = response_h > sla_h
    complaint = cat == cat_labels.index("complaint")
    compliment = cat == cat_labels.index("compliment")
    reopened = rng.random(m) < 0.06 + 0.10 * breached
    resolve_days = np.exp(rng.normal(np.log(0.8), 1.0, m)) * (1 + complaint) + 2.0 * reopened
    resolved = first + resolve_days
    # the backlog: besides tickets naturally unresolved at as_of, some recent tickets are still open
    natural_open = resolved >= end
    extra = max(0, int(round(OPEN_TICKET_SHARE * m)) - int(natural_open.sum()))
    recent = np.flatnonzero(~natural_open & (created >= end - 30))
    forced = rng.choice(recent, size=min(extra, len(recent)), replace=False) if extra and len(recent) else []
    is_open = natural_open.copy()
    is_open[forced] = True
    resolved = np.where(is_open, np.nan, resolved)
    first = np.where(first < end, first, np.nan)
    rated = ~is_open & (rng.random(m) < CSAT_RESPONSE_RATE)
    latent = 4.4 - CSAT_BREACH_PENALTY * breached - 0.9 * complaint + 0.6 * compliment - 0.6 * reopened
    csat = np.clip(np.round(latent + rng.normal(0, 0.7, m)), 1, 5).astype(np.int64)
    contact_count = 1 + rng.poisson(0.8 + 1.2 * breached + 1.5 * reopened + 0.5 * (channel == 0))
    subject_sets = [TICKET_SUBJECTS[c] for c in cat_labels]
    flat = [s for group in subject_sets for s in group]
    offsets = np.cumsum([0] + [len(g) for g in subject_sets])[:-1]
    sizes = np.array([len(g) for g in subject_sets])
    subject = offsets[cat] + (rng.random(m) * sizes[cat]).astype(np.int64)
    category = np.where(cat == len(cat_labels) - 1, cat_labels.index("delivery"), cat)
    return {
        "owner": owner, "created": created, "first": first, "resolved": resolved, "channel": channel,
        "priority": prio, "category": category, "cat_labels": cat_labels, "agent": rng.integers(0, len(AGENTS), m),
        "csat": csat, "rated": rated, "reopened": reopened, "contact_count": contact_count, "subject": subject,
        "subjects": flat, "breached": breached,
    }


def _surveys(rng, people, ships: _Shipments, ship_owner, tickets, clock: _Clock):
    end = clock.end
    hit_s = ~np.isnan(ships.delivered) & (rng.random(len(ships.order)) < SURVEY_AFTER_DELIVERY)
    rated = np.flatnonzero(tickets["rated"])
    hit_t = rated[rng.random(len(rated)) < SURVEY_AFTER_RATED_TICKET]
    prim = np.flatnonzero(~people.is_dup)
    hit_c = prim[rng.random(len(prim)) < SURVEY_RELATIONSHIP]
    owner = np.concatenate([ship_owner[hit_s], tickets["owner"][hit_t], hit_c])
    t = np.concatenate([ships.delivered[hit_s] + rng.uniform(1, 7, hit_s.sum()),
                        tickets["resolved"][hit_t] + rng.uniform(0.2, 4, len(hit_t)),
                        people.t0[hit_c] + rng.random(len(hit_c)) * (end - people.t0[hit_c])])
    late = np.concatenate([ships.late[hit_s], np.zeros(len(hit_t) + len(hit_c), dtype=bool)])
    from_ticket = np.concatenate([np.zeros(hit_s.sum(), dtype=bool), np.ones(len(hit_t), dtype=bool),
                                  np.zeros(len(hit_c), dtype=bool)])
    csat = np.concatenate([np.full(hit_s.sum(), 4), tickets["csat"][hit_t], np.full(len(hit_c), 4)])
    latent = 8.3 - NPS_LATE_PENALTY * late + NPS_PER_CSAT_POINT * (csat - 4) + rng.normal(0, 1.5, len(owner))
    nps = np.clip(np.round(latent), 0, 10).astype(np.int64)
    themes = list(SURVEY_THEMES)
    theme = np.select([nps >= 9, nps >= 7, late, from_ticket & (csat <= 3)],
                      [themes.index("praise"), themes.index("neutral"), themes.index("late_delivery"),
                       themes.index("slow_support")], themes.index("product_quality"))
    flat = [s for th in themes for s in SURVEY_THEMES[th]]
    offsets = np.cumsum([0] + [len(SURVEY_THEMES[th]) for th in themes])[:-1]
    sizes = np.array([len(SURVEY_THEMES[th]) for th in themes])
    phrase = offsets[theme] + (rng.random(len(owner)) * sizes[theme]).astype(np.int64)
    has_comment = rng.random(len(owner)) < SURVEY_COMMENT_SHARE
    channel = _choice(rng, (0.60, 0.15, 0.25), len(owner))
    keep = t < end
    sort = np.argsort(t[keep], kind="stable")
    sel = np.flatnonzero(keep)[sort]
    return {"owner": owner[sel], "t": t[sel], "nps": nps[sel], "phrase": phrase[sel], "phrases": flat,
            "has_comment": has_comment[sel], "channel": channel[sel], "theme": theme[sel], "themes": themes}


# --------------------------------------------------------------------------------------------------------------
# The generator
# --------------------------------------------------------------------------------------------------------------
def _validate(n_customers, seed, as_of, years) -> dt.date:
    if isinstance(n_customers, bool) or not isinstance(n_customers, int | np.integer):
        raise TypeError(f"n_customers must be an integer (got {n_customers!r})")
    if not 50 <= n_customers <= 5_000_000:
        raise ValueError(f"n_customers must be between 50 and 5,000,000 (got {n_customers:,})")
    if isinstance(seed, bool) or not isinstance(seed, int | np.integer) or seed < 0:
        raise TypeError(f"seed must be a non-negative integer (got {seed!r})")
    if not 0.5 <= years <= 30:
        raise ValueError(f"years must be between 0.5 and 30 (got {years})")
    if isinstance(as_of, dt.datetime):
        as_of = as_of.date()
    if not isinstance(as_of, dt.date):
        raise TypeError(f"as_of must be a datetime.date (got {as_of!r})")
    return as_of


def generate(n_customers: int = 5000, seed: int = 42, as_of: dt.date = dt.date(2026, 6, 30),
             years: float = 3.0) -> SampleData:
    """Sample data for every canonical table (each at its schema grain, e.g. one row per order) plus its truth.

    ``n_customers`` customer rows (about 1% of them duplicate records of an earlier customer) sign up over the
    ``years`` before ``as_of``; every event happens on or before ``as_of``. The same arguments give identical
    frames. Ids are text (``C00001``, order ids like ``00000001``), booleans bool, dates and timestamps
    ``datetime64[s]``, money float rounded to the penny, nullable integers ``Int64``.

    >>> data = generate(200, seed=1)
    >>> len(data.tables["customers"]), data.tables["customers"]["customer_id"].iloc[0]
    (200, 'C00001')
    >>> data.truth["campaigns"]["absolute_lift"], data.truth["fulfilment"]["late_carrier"]
    (0.03, 'ParcelPoint')
    """
    as_of = _validate(n_customers, seed, as_of, years)
    n = int(n_customers)
    streams = np.random.SeedSequence(int(seed)).spawn(len(_STREAMS))
    rngs = {name: np.random.default_rng(s) for name, s in zip(_STREAMS, streams)}
    days = int(round(years * 365.25))
    day_after = np.datetime64(as_of + dt.timedelta(days=1), "s")
    clock = _Clock(day_after - np.timedelta64(days * _SECONDS_PER_DAY, "s"), float(days))

    people = _customers(rngs["customers"], n, clock, as_of)
    products, price = _products(rngs["products"])
    hist = _history(rngs["purchases"], people, price, clock)
    campaigns, contacts, experiment = _campaigns(rngs["campaigns"], people, hist, price, clock)
    returns = _returns(rngs["returns"], hist.buys, hist.lines, clock.end)
    order_ids, tables = _order_tables(hist, returns, people.columns["customer_id"], products["product_id"], clock)
    ship_owner = hist.buys.owner[hist.ships.order]
    tickets = _tickets(rngs["tickets"], people, hist.alive_until, hist.ships, ship_owner,
                       hist.buys.owner[returns.purchase], returns.t, clock)
    surveys = _surveys(rngs["surveys"], people, hist.ships, ship_owner, tickets, clock)

    customer_ids = people.columns["customer_id"]
    tables["customers"] = people.columns
    tables["products"] = products
    tables.update(_campaign_tables(campaigns, contacts, customer_ids, clock))
    tables["support_tickets"] = _ticket_table(tickets, customer_ids, clock)
    tables["surveys"] = _survey_table(surveys, customer_ids, clock)
    tables["customer_notes"] = _notes_table(rngs["notes"], people, customer_ids, clock)
    tables["goals"] = {}
    frames = {name: _frame(name, tables[name]) for name in TABLES}
    truth = _truth(people=people, hist=hist, experiment=experiment, order_ids=order_ids, returns=returns,
                   tickets=tickets, surveys=surveys, n=n, seed=int(seed), as_of=as_of, years=years, clock=clock)
    return SampleData(frames, truth)


def _order_tables(hist: _History, returns: _Returns, customer_ids: pa.Array, product_ids: pa.Array,
                  clock: _Clock) -> tuple[pa.Array, dict]:
    """orders, order_items and shipments; order ids are numbered by time. Also the id of each purchase/return."""
    buys, lines, ships = hist.buys, hist.lines, hist.ships
    n_buy, n_ret = len(buys), len(returns.t)
    owner = np.concatenate([buys.owner, buys.owner[returns.purchase]])
    t = np.concatenate([buys.t, returns.t])
    rank = np.argsort(t, kind="stable")
    number = np.empty(len(t), dtype=np.int64)
    number[rank] = np.arange(1, len(t) + 1)
    order_ids = _num(number, max(8, len(str(len(t)))))

    not_shipped = np.bincount(ships.order, weights=np.isnan(ships.shipped), minlength=n_buy)
    in_transit = np.bincount(ships.order, weights=np.isnan(ships.delivered), minlength=n_buy)
    status = np.concatenate([np.where(not_shipped > 0, 1, np.where(in_transit > 0, 2, 0)), np.full(n_ret, 3)])
    zeros = np.zeros(n_ret)
    columns = {
        "amount": np.concatenate([buys.cents, returns.cents]) / 100,
        "channel": np.concatenate([buys.channel, buys.channel[returns.purchase]]),
        "discount": np.concatenate([np.bincount(lines.order, weights=lines.discount, minlength=n_buy), zeros]) / 100,
        "shipping_cost": np.concatenate([np.bincount(ships.order, weights=ships.cents, minlength=n_buy), zeros]) / 100,
    }
    orders = {
        "order_id": order_ids.take(pa.array(rank)),
        "customer_id": customer_ids.take(pa.array(owner[rank])),
        "ordered_at": clock.ts(t[rank]),
        "amount": columns["amount"][rank],
        "channel": _take(ORDER_CHANNELS, columns["channel"][rank]),
        "status": _take(("completed", "processing", "shipped", "returned"), status[rank]),
        "is_return": rank >= n_buy,
        "currency": _take((CURRENCY,), np.zeros(len(rank))),
        "discount": columns["discount"][rank],
        "shipping_cost": columns["shipping_cost"][rank],
    }
    all_lines = _Lines(*(np.concatenate([getattr(lines, f.name), getattr(returns.lines, f.name) + (
        n_buy if f.name == "order" else 0)]) for f in fields(_Lines)))
    items = all_lines.take(_grouped_permutation(all_lines.order, rank))
    order_items = {
        "order_id": order_ids.take(pa.array(items.order)),
        "line_number": items.line.astype(np.int64),
        "product_id": product_ids.take(pa.array(items.product)),
        "quantity": items.qty.astype(np.int64),
        "unit_price": items.unit / 100,
        "discount": items.discount / 100,
    }
    sh = ships.take(_grouped_permutation(ships.order, rank[rank < n_buy]))
    shipments = {
        "shipment_id": _ids("SH", np.arange(1, len(sh) + 1), max(8, len(str(len(sh))))),
        "order_id": order_ids.take(pa.array(sh.order)),
        "carrier": _take(CARRIERS, sh.carrier),
        "promised_date": clock.date(sh.promised),
        "shipped_at": clock.ts(sh.shipped),
        "delivered_at": clock.ts(sh.delivered),
        "shipping_cost": sh.cents / 100,
    }
    return order_ids, {"orders": orders, "order_items": order_items, "shipments": shipments}


def _campaign_tables(rows: list[dict], contacts: dict, customer_ids: pa.Array, clock: _Clock) -> dict:
    ids = pa.array([r["campaign_id"] for r in rows])
    campaigns = {
        "campaign_id": ids,
        "campaign_name": pa.array([r["campaign_name"] for r in rows]),
        "channel": pa.array([r["channel"] for r in rows]),
        "start_date": clock.date(np.array([r["start"] for r in rows])),
        "end_date": clock.date(np.array([r["end"] for r in rows])),
        "cost": np.round(np.array([r["cost"] for r in rows]), 2),
        "target_segment": pa.array([r["target_segment"] for r in rows]),
        "offer": pa.array([r["offer"] for r in rows]),
    }
    s = np.lexsort((contacts["customer"], contacts["campaign"]))
    contact_table = {
        "campaign_id": ids.take(pa.array(contacts["campaign"][s])),
        "customer_id": customer_ids.take(pa.array(contacts["customer"][s])),
        "contact_group": _take(("treatment", "control"), contacts["control"][s].astype(np.int64)),
        "contacted_at": clock.ts(contacts["contacted"][s]),
        **{f"is_{k}": contacts[k][s] for k in ("sent", "opened", "clicked", "responded", "converted")},
        "attributed_revenue": contacts["revenue"][s] / 100,
        "contact_cost": contacts["cost"][s] / 100,
    }
    return {"campaigns": campaigns, "campaign_contacts": contact_table}


def _ticket_table(tk: dict, customer_ids: pa.Array, clock: _Clock) -> dict:
    m = len(tk["owner"])
    csat = pd.array(tk["csat"], dtype="Int64")
    csat[~tk["rated"]] = pd.NA
    return {
        "ticket_id": _ids("T", np.arange(1, m + 1), max(7, len(str(m)))),
        "customer_id": customer_ids.take(pa.array(tk["owner"])),
        "created_at": clock.ts(tk["created"]),
        "first_response_at": clock.ts(tk["first"]),
        "resolved_at": clock.ts(tk["resolved"]),
        "channel": _take(TICKET_CHANNELS, tk["channel"]),
        "priority": _take(PRIORITIES, tk["priority"]),
        "category": _take(tk["cat_labels"], tk["category"]),
        "agent": _take(AGENTS, tk["agent"]),
        "csat": csat,
        "is_reopened": tk["reopened"],
        "contact_count": tk["contact_count"].astype(np.int64),
        "subject": _take(tk["subjects"], tk["subject"]),
    }


def _survey_table(sv: dict, customer_ids: pa.Array, clock: _Clock) -> dict:
    m = len(sv["owner"])
    return {
        "survey_id": _ids("S", np.arange(1, m + 1), max(7, len(str(m)))),
        "customer_id": customer_ids.take(pa.array(sv["owner"])),
        "responded_at": clock.ts(sv["t"]),
        "nps_score": sv["nps"].astype(np.int64),
        "comment": _take(sv["phrases"], sv["phrase"], null=~sv["has_comment"]),
        "channel": _take(("email", "sms", "web"), sv["channel"]),
    }


def _notes_table(rng, people: _People, customer_ids: pa.Array, clock: _Clock) -> dict:
    """A few short staff notes (NOTES_PER_CUSTOMER per customer) written after the customer signed up."""
    prim = np.flatnonzero(~people.is_dup)
    m = max(20, int(round(NOTES_PER_CUSTOMER * len(prim))))
    owner = rng.choice(prim, size=m)
    t = people.t0[owner] + rng.random(m) * (clock.end - people.t0[owner])
    s = np.argsort(t, kind="stable")
    return {
        "note_id": _ids("N", np.arange(1, m + 1), max(6, len(str(m)))),
        "customer_id": customer_ids.take(pa.array(owner[s])),
        "created_at": clock.ts(t[s]),
        "author": _take(NOTE_AUTHORS, rng.integers(0, len(NOTE_AUTHORS), m)),
        "note": _take(NOTE_TEXTS, rng.integers(0, len(NOTE_TEXTS), m)),
    }


def _frame(name: str, columns: dict) -> pd.DataFrame:
    """A frame with exactly the schema's columns, in order, with pandas types for the logical types."""
    table = TABLES[name]
    extra = set(columns) - set(table.column_names)
    if extra:
        raise AssertionError(f"{name}: generated columns not in the schema: {sorted(extra)}")
    data = {}
    for col in table.columns:
        values = columns.get(col.name)
        if values is None:
            data[col.name] = _empty(col.type)
        elif col.type in ("id", "text"):
            data[col.name] = _str(values)
        else:
            data[col.name] = values
    return pd.DataFrame(data, columns=table.column_names)


def _empty(logical: str):
    return {"id": _str([]), "text": _str([]), "int": pd.array([], dtype="Int64"), "number": np.array([], float),
            "money": np.array([], float), "date": np.array([], "datetime64[s]"), "ts": np.array([], "datetime64[s]"),
            "bool": np.array([], bool)}[logical]


def _truth(*, people: _People, hist: _History, experiment: dict, order_ids: pa.Array, returns: _Returns,
           tickets: dict, surveys: dict, n: int, seed: int, as_of: dt.date, years: float, clock: _Clock) -> dict:
    """Planted parameters, per-customer facts (columnar lists) and a few observed rates for orientation."""
    ids = np.asarray(people.columns["customer_id"].to_numpy(zero_copy_only=False), dtype=object)
    prim = np.flatnonzero(~people.is_dup)
    dead = hist.is_dead[prim]
    last = hist.last_buy[prim]
    dropout = np.where(dead, clock.iso_date(np.where(dead, last, 0)).astype(object), None)
    cutoff = as_of - dt.timedelta(days=CHURN_HORIZON_DAYS)
    cutoff_end = clock.day_of(cutoff) + 1
    alive_at_cutoff = (people.t0[prim] < cutoff_end) & (~dead | (last >= cutoff_end))

    counts = np.bincount(people.referrer[people.referrer >= 0], minlength=n)
    dup = np.flatnonzero(people.is_dup)
    kinds = np.array(["email", "phone", "name_postcode"], dtype=object)
    exp = dict(experiment)
    persuadable_rows = exp.pop("persuadable_row", np.array([], dtype=np.int64))
    campaign_orders = np.flatnonzero(hist.buys.source == 2)

    ships = hist.ships
    delivered = ~np.isnan(ships.delivered)
    late_rate = {c: _rate(ships.late[delivered & (ships.carrier == i)]) for i, c in enumerate(CARRIERS)}
    breach = {c: _rate(tickets["breached"][tickets["channel"] == i]) for i, c in enumerate(TICKET_CHANNELS)}
    theme_counts = np.bincount(surveys["theme"][surveys["has_comment"]], minlength=len(SURVEY_THEMES))
    n_orders = len(hist.buys) + len(returns.t)
    deviation = round(float(np.median(np.abs(hist.buys.cents / hist.buys.target - 1))), 4) if len(hist.buys) else None
    return {
        "generator": {"n_customers": n, "seed": seed, "as_of": as_of.isoformat(), "years": years,
                      "first_day": str(clock.origin.astype("datetime64[D]")), "currency": CURRENCY,
                      "note": "every event happens on or before as_of; ids are text"},
        "acquisition": {"growth_over_period": ACQUISITION_GROWTH,
                        "rule": f"sign-up rate grows exponentially to {ACQUISITION_GROWTH}x its first_day rate"},
        "purchases": {
            "model": "BG/NBD", "time_unit": "week", **BGNBD,
            "rule": ("every non-duplicate customer buys on signup_date (time 0); repeat purchases come at rate "
                     "lambda per week; after each repeat purchase the customer drops out with probability p. "
                     "Campaign conversions are extra orders (campaigns.campaign_order_ids)."),
            "late_delivery_dropout_probability": LATE_DROPOUT_PROBABILITY,
            "repurchase_factor_after_late_delivery": round(1 - LATE_DROPOUT_PROBABILITY, 6),
        },
        "spend": {"model": "Gamma-Gamma", **GAMMA_GAMMA,
                  "rule": ("each purchase targets Gamma(p, rate nu) with nu ~ Gamma(q, rate gamma) per customer; "
                           "the order is the basket nearest that target (the amount is within a few % of it)"),
                  "population_mean_spend": round(GAMMA_GAMMA["p"] * GAMMA_GAMMA["gamma"] / (GAMMA_GAMMA["q"] - 1),
                                                 4),
                  "observed_median_abs_basket_deviation": deviation},
        "returns": {"return_probability_per_purchase": RETURN_PROBABILITY, "n_returns": len(returns.t),
                    "n_orders": n_orders, "share_of_orders": round(len(returns.t) / max(n_orders, 1), 4),
                    "rule": "a return is its own order 2-30 days after the purchase: all lines, or the last line"},
        "customers": {  # columnar, non-duplicate customers only, in customer_id order
            "customer_id": ids[prim].tolist(),
            "lambda_per_week": _sig(hist.lam),
            "dropout_probability": _sig(hist.pdrop),
            "mean_spend": _sig(GAMMA_GAMMA["p"] / hist.nu[prim]),
            "is_alive": (~dead).tolist(),
            "dropout_date": dropout.tolist(),
        },
        "churn": {
            "rule": ("dead = never buys again; dropout_date = date of the last purchase (a return of that purchase "
                     "may still follow)"),
            "true_churner_ids": ids[prim][dead].tolist(),
            "cutoff_date": cutoff.isoformat(), "horizon_days": CHURN_HORIZON_DAYS,
            "alive_at_cutoff_count": int(alive_at_cutoff.sum()),
            "died_after_cutoff_ids": ids[prim][alive_at_cutoff & dead].tolist(),
            "died_after_cutoff_rule": "signed up on or before cutoff_date, alive at its end, dropout_date after it",
            "late_delivery_dropout_ids": ids[prim][hist.late_dropout[prim]].tolist(),
        },
        "campaigns": {
            **exp, "persuadable_ids": ids[persuadable_rows].tolist(),
            "conversion_window_days": CONVERSION_WINDOW_DAYS,
            "rule": ("control rows are held out (is_sent false) and may still buy; every converted contact has an "
                     "order by the customer within the window whose amount is attributed_revenue"),
            "contact_cost_by_channel": CONTACT_COST, "fixed_cost_by_channel": CAMPAIGN_FIXED_COST,
            "non_experiment_conversion_by_channel": {c: f["converted"] for c, f in CHANNEL_FUNNEL.items()},
            "campaign_order_ids": order_ids.take(pa.array(campaign_orders)).to_pylist(),
        },
        "support": {
            "sla_first_response_hours": SLA_FIRST_RESPONSE_HOURS, "slow_channel": SLOW_CHANNEL,
            "median_response_share_of_sla": RESPONSE_MEDIAN_SHARE_OF_SLA,
            "breach_rule": "first_response_at - created_at > sla_first_response_hours[priority]",
            "observed_breach_rate_by_channel": breach,
            "open_ticket_share": OPEN_TICKET_SHARE, "csat_breach_penalty": CSAT_BREACH_PENALTY,
            "ticket_after_return_probability": TICKET_AFTER_RETURN,
        },
        "fulfilment": {
            "late_carrier": LATE_CARRIER,
            "late_probability_by_carrier": {c: v[1] for c, v in CARRIERS.items()},
            "observed_late_rate_by_carrier": late_rate,
            "late_rule": "date of delivered_at after promised_date",
            "ticket_probability_after_late": TICKET_AFTER_LATE,
            "ticket_probability_after_on_time": TICKET_AFTER_ON_TIME,
            "ticket_window_days": TICKET_WINDOW_DAYS, "ticket_category": "delivery",
            "repurchase_factor_after_late_delivery": round(1 - LATE_DROPOUT_PROBABILITY, 6),
        },
        "referrals": {
            "referral_share": REFERRAL_SHARE, "influencer_share_of_referrals": INFLUENCER_SHARE_OF_REFERRALS,
            "influencers": {ids[i]: int(counts[i]) for i in people.influencers},
        },
        "duplicates": {
            "share": DUPLICATE_SHARE,
            "pairs": [list(p) for p in zip(ids[people.original[dup]].tolist(), ids[dup].tolist(),
                                           kinds[people.dup_kind[dup]].tolist())],
            "kinds": {"email": "same address, different case or spaces", "phone": "same number written another way",
                      "name_postcode": "one-letter typo in last_name, same postcode"},
            "note": "pairs are [original, duplicate, kind]; duplicate records have at most one order and are left "
                    "out of the customers and churn truth",
        },
        "surveys": {"nps_late_penalty": NPS_LATE_PENALTY, "nps_per_csat_point": NPS_PER_CSAT_POINT,
                    "themes": {k: list(v) for k, v in SURVEY_THEMES.items()},
                    "theme_counts": dict(zip(SURVEY_THEMES, theme_counts.tolist()))},
    }


def _rate(flags: np.ndarray) -> float | None:
    return round(float(flags.mean()), 4) if len(flags) else None


# --------------------------------------------------------------------------------------------------------------
# Writing
# --------------------------------------------------------------------------------------------------------------
def _csv_frame(name: str, df: pd.DataFrame) -> pd.DataFrame:
    """Values as they go to CSV: ISO dates and timestamps, true/false, empty for null."""
    out = {}
    for col in TABLES[name].columns:
        s = df[col.name]
        if col.type in ("date", "ts"):
            values = s.to_numpy(dtype="datetime64[s]")
            text = np.datetime_as_string(values, unit="D" if col.type == "date" else "s")
            text = np.strings.replace(text, "T", " ") if len(text) else text
            out[col.name] = np.where(np.isnat(values), "", text)
        elif col.type == "bool":
            out[col.name] = np.where(s.to_numpy(dtype=bool), "true", "false")
        elif col.type in ("money", "number") and s.dtype.kind == "f":
            out[col.name] = s + 0.0  # no negative zero
        else:
            out[col.name] = s
    return pd.DataFrame(out, columns=TABLES[name].column_names)


def write_sample(folder: Path, data: SampleData) -> list[Path]:
    """Write ``<table>.csv.gz`` (one row per row of each table; UTF-8, header) and ``ground_truth.json``.

    Dates are ``YYYY-MM-DD``, timestamps ``YYYY-MM-DD HH:MM:SS``, booleans ``true``/``false``, nulls empty, money
    with two decimals. The bytes depend only on ``data`` (gzip header without time or file name).
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for name in TABLES:
        df = data.tables[name]
        path = folder / f"{name}.csv.gz"
        with open(path, "wb") as raw, gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=0) as gz:
            step = 250_000
            for start in range(0, max(len(df), 1), step):
                chunk = _csv_frame(name, df.iloc[start:start + step])
                text = chunk.to_csv(index=False, header=start == 0, lineterminator="\n", float_format="%.2f",
                                    na_rep="")
                gz.write(text.encode("utf-8"))
        written.append(path)
    path = folder / "ground_truth.json"
    path.write_text(json.dumps(data.truth, ensure_ascii=False, separators=(",", ":")) + "\n", encoding="utf-8")
    written.append(path)
    return written
