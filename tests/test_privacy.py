"""Presentation-mode masking: names, e-mails and phones never survive, numbers and ids always do."""

from __future__ import annotations

import re

import pandas as pd
import pytest

from crm_core import privacy, store
from crm_core.exports import frame_to_csv
from crm_core.privacy import mask_email, mask_frame, mask_name, mask_phone, mask_text


@pytest.mark.parametrize("value, expected", [
    ("Zoë Müller", "Z••• M•••"),
    ("  Ann   Lee-Smith ", "A••• L•••"),
    ("", ""),
    (None, None),
])
def test_mask_name(value, expected):
    assert mask_name(value) == expected


@pytest.mark.parametrize("value, expected", [
    ("zoe.muller@example.co.uk", "z•••@•••.uk"),
    (" ANN@Shop.DE ", "A•••@•••.DE"),
    ("not an address", "•••"),
])
def test_mask_email(value, expected):
    assert mask_email(value) == expected


@pytest.mark.parametrize("value, expected", [
    ("+44 20 7946 0018", "••• 18"),
    ("0171-234567", "••• 67"),
    ("123", "•••"),   # too short to keep anything
    ("n/a", "•••"),
])
def test_mask_phone(value, expected):
    assert mask_phone(value) == expected


def test_mask_text_masks_addresses_and_numbers_but_not_dates_times_or_ids():
    text = "Call +44 20 7946 0018 or write to zoe@x.com on 2026-03-01 10:15 about order O000123456 (EUR 1,250.00)."
    assert mask_text(text) == ("Call ••• 18 or write to z•••@•••.com on 2026-03-01 10:15 about order O000123456 "
                               "(EUR 1,250.00).")


def test_personal_columns_by_name():
    assert all(privacy.is_personal(c) for c in ("name", "First Name", "last_name", "email", "contact_email",
                                                "phone", "mobile", "customer_name", "referrer_name"))
    assert not any(privacy.is_personal(c) for c in ("campaign_name", "goal_name", "product_name", "agent",
                                                    "customer_id", "note", "revenue"))


def test_mask_frame_keeps_numbers_ids_and_things_and_leaves_input_alone():
    df = pd.DataFrame({
        "customer_id": ["100012345678", "C2"],          # digit-only ids are not phone numbers
        "name": ["Ann Lee", None],
        "email": ["ann@b.de", "bo@c.org"],
        "phone": ["0171 234567", ""],
        "campaign_name": ["Spring sale", "VIP"],
        "note": ["ring 01712345678 please", "ok"],
        "segment": ["Champions (ann@b.de)", "Loyal"],  # an address in any text column is masked
        "revenue": [-12.5, 3.0],
    })
    before = df.copy()
    out = mask_frame(df)
    pd.testing.assert_frame_equal(df, before)  # a copy, not in place
    assert out["name"].iloc[0] == "A••• L•••" and pd.isna(out["name"].iloc[1])
    assert out.drop(columns="name").to_dict("list") == {
        "customer_id": ["100012345678", "C2"],
        "email": ["a•••@•••.de", "b•••@•••.org"],
        "phone": ["••• 67", ""],
        "campaign_name": ["Spring sale", "VIP"],
        "note": ["ring ••• 78 please", "ok"],
        "segment": ["Champions (a•••@•••.de)", "Loyal"],
        "revenue": [-12.5, 3.0],
    }


def test_masked_customers_of_the_sample_keep_no_address_name_or_phone(sample_store):
    con = store.connect(sample_store, read_only=True)
    try:
        customers = con.execute("SELECT * FROM customers").df()
    finally:
        con.close()
    text = frame_to_csv(mask_frame(customers))
    assert not re.search(r"[\w.]+@[\w-]+\.\w+", text), "an e-mail address survived"
    for column in ("name", "first_name", "last_name", "phone"):
        if column in customers and customers[column].notna().any():
            sample = customers[column].dropna().astype(str)
            sample = sample[sample.str.len() > 3].head(50)
            assert not any(f",{v}," in text or f",{v}\n" in text for v in sample), column
    assert len(mask_frame(customers)) == len(customers)
