"""Help-desk exports (one row per ticket) import as they are, through ``ingest.import_file`` — the call the Data page
and ``python -m crm_core import`` make — into a fresh store; then the stored clocks give hand-computed medians.

Three exports in ``fixtures/``, each in its tool's own headers and its own timestamp format, 31 tickets each:

- ``helpdesk_zendesk_iso.csv``: Zendesk-style headers (``Id``, ``Requester id``, ``Via``, ``Assignee``,
  ``Created at``, ``First reply at``, ``Solved at``, ``Satisfaction Score`` good/bad/offered/unoffered); ISO 8601
  with ``Z``, and on a few rows local time with ``+01:00`` or ``-05:00``.
- ``helpdesk_freshdesk_dayfirst.csv``: Freshdesk-style (``Created time``, ``Initial response time``,
  ``Resolved time``, ``Closed time``, ``Source``, ``Type``, ``Satisfaction rating`` 1-5); ``DD/MM/YYYY HH:MM``.
- ``helpdesk_hubspot_us.csv``: HubSpot-style (``Create date``, ``First agent reply date``, ``Close date``,
  ``Ticket owner``, ``Ticket name``, ``Category``); ``M/D/YYYY h:mm AM/PM``.

In each, line 12 is resolved before it was created and line 23 was answered before it was created: both are
rejected with file, line and the columns compared, and are not stored. 29 tickets are stored: 27 answered (the 4
slowest answers still open) and 2 not answered yet (open), so 23 resolved and 6 open.

Two more formats (``2 Mar 2026 09:15`` and ``2026-03-02 09:15:00``, with an offset after a space) are small
inline files.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import pytest

from crm_core import ingest, store, support
from crm_core.ingest import RejectedRow

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = Path(__file__).parent / "fixtures"
AS_OF = date(2026, 3, 31)  # after every ticket event in the fixtures


@dataclass(frozen=True)
class Export:
    file: str
    mapping: dict[str, str]  # canonical column → header, as proposed with no help
    date_format: str
    created: str  # the headers the row rules name
    responded: str
    resolved: str
    first_response_minutes: tuple[int, ...]  # the 27 answered tickets, sorted
    resolution_minutes: tuple[int, ...]  # the 23 resolved tickets, sorted
    median_first_response_hours: float
    median_resolution_hours: float


ZENDESK = Export(
    "helpdesk_zendesk_iso.csv",
    {"ticket_id": "Id", "customer_id": "Requester id", "created_at": "Created at",
     "first_response_at": "First reply at", "resolved_at": "Solved at", "channel": "Via", "priority": "Priority",
     "agent": "Assignee", "subject": "Subject"},
    "YYYY-MM-DD", "Created at", "First reply at", "Solved at",
    (5, 10, 12, 15, 18, 20, 25, 30, 35, 40, 45, 50, 55, 75, 80, 90, 100, 120, 150, 180, 240, 300, 360, 480, 600, 720,
     1440),
    (30, 45, 60, 90, 120, 150, 180, 240, 300, 360, 420, 510, 600, 720, 900, 1080, 1440, 1800, 2160, 2880, 4320, 5760,
     7200),
    # 27 answers: the 14th smallest is 75 min = 1.25 h (ticket 1005: created 10:00+01:00 = 09:00Z, answered
    # 10:15Z; read without its offset it would be 15 min and the median 55 min). 23 resolutions: the 12th smallest
    # is 510 min = 8.5 h.
    75 / 60, 510 / 60,
)
FRESHDESK = Export(
    "helpdesk_freshdesk_dayfirst.csv",
    {"ticket_id": "Ticket ID", "customer_id": "Contact ID", "created_at": "Created time",
     "first_response_at": "Initial response time", "resolved_at": "Resolved time", "channel": "Source",
     "priority": "Priority", "category": "Type", "agent": "Agent", "csat": "Satisfaction rating",
     "subject": "Subject"},
    "DD/MM/YYYY", "Created time", "Initial response time", "Resolved time",
    (3, 8, 10, 14, 20, 22, 28, 33, 40, 47, 52, 58, 64, 90, 95, 110, 130, 160, 200, 260, 330, 420, 540, 660, 900, 1500,
     2000),
    (40, 55, 75, 100, 130, 170, 200, 260, 320, 400, 480, 600, 660, 780, 960, 1200, 1500, 1920, 2400, 3000, 3600, 5000,
     6600),
    # 14th of 27 answers: 90 min = 1.5 h; 12th of 23 resolutions: 600 min = 10 h
    90 / 60, 600 / 60,
)
HUBSPOT = Export(
    "helpdesk_hubspot_us.csv",
    {"ticket_id": "Ticket ID", "customer_id": "Contact ID", "created_at": "Create date",
     "first_response_at": "First agent reply date", "resolved_at": "Close date", "channel": "Source",
     "priority": "Priority", "category": "Category", "agent": "Ticket owner", "subject": "Ticket name"},
    "MM/DD/YYYY", "Create date", "First agent reply date", "Close date",
    (2, 4, 6, 9, 11, 15, 17, 21, 24, 28, 31, 36, 40, 45, 50, 62, 70, 85, 105, 125, 170, 210, 290, 380, 470, 610, 830),
    (25, 50, 70, 95, 150, 220, 300, 380, 500, 700, 960, 1440, 1500, 1700, 2000, 2300, 2600, 3100, 3900, 4500, 5400,
     6300, 8000),
    # 14th of 27 answers: 45 min = 0.75 h; 12th of 23 resolutions: 1440 min = 24 h
    45 / 60, 1440 / 60,
)
EXPORTS = [ZENDESK, FRESHDESK, HUBSPOT]
IDS = ["zendesk-iso-offsets", "freshdesk-day-first", "hubspot-12-hour"]
BAD_TICKETS = {"helpdesk_zendesk_iso.csv": ("1090", "1091"), "helpdesk_freshdesk_dayfirst.csv": ("5490", "5491"),
               "helpdesk_hubspot_us.csv": ("2219990", "2219991")}


def imported(con, export: Export, **kwargs) -> ingest.ImportReport:
    report = ingest.import_file(con, FIXTURES / export.file, "support_tickets", **kwargs)
    assert report.outcome == "committed", report.message
    return report


def stored(con, ticket_id: str) -> tuple:
    """created_at, first_response_at, resolved_at of one stored ticket, as text."""
    return con.execute("SELECT created_at::VARCHAR, first_response_at::VARCHAR, resolved_at::VARCHAR "
                       "FROM support_tickets WHERE ticket_id = ?", [ticket_id]).fetchone()


@pytest.mark.parametrize("export", EXPORTS, ids=IDS)
class TestHelpDeskExports:
    def test_maps_and_reads_dates_without_help(self, con, export):
        r = imported(con, export)
        assert r.mapping == export.mapping
        assert (r.rows_read, r.rows_accepted, r.rows_rejected) == (31, 29, 2)
        for header in (export.created, export.responded, export.resolved):
            assert r.detected[f"date_format[{header}]"] == export.date_format

    def test_rows_breaking_a_clock_rule_are_rejected_with_line_and_columns(self, con, export):
        r = imported(con, export)
        # the same two bad rows in every export (times in UTC; they carry no offset): resolved 9 Mar 16:00,
        # created 10 Mar 14:20; answered 11 Mar 09:10, created 11 Mar 09:30
        assert list(r.rejected) == [
            RejectedRow(12, f"{export.resolved}, {export.created}", "resolved before created",
                        "2026-03-09 16:00:00, 2026-03-10 14:20:00"),
            RejectedRow(23, f"{export.responded}, {export.created}", "first response before created",
                        "2026-03-11 09:10:00, 2026-03-11 09:30:00"),
        ]
        assert r.rejected_by_reason == {
            f"resolved before created in '{export.resolved}, {export.created}'": 1,
            f"first response before created in '{export.responded}, {export.created}'": 1}
        text = r.summary()
        assert f"{export.file} → support_tickets" in text
        assert f"line 12, column '{export.resolved}, {export.created}': resolved before created" in text
        # not stored, so not counted in any clock
        ids = [t for (t,) in con.execute("SELECT ticket_id FROM support_tickets").fetchall()]
        assert len(ids) == 29 and not set(BAD_TICKETS[export.file]) & set(ids)

    def test_stored_clocks_and_medians_equal_the_hand_computed_ones(self, con, export):
        imported(con, export)
        minutes = con.execute(
            "WITH m AS (SELECT epoch(first_response_at - created_at) / 60 AS fr, epoch(resolved_at - created_at) / 60 "
            "AS res FROM support_tickets) SELECT list(fr ORDER BY fr) FILTER (WHERE fr IS NOT NULL), "
            "list(res ORDER BY res) FILTER (WHERE res IS NOT NULL), count(*) FILTER (WHERE res IS NULL) FROM m"
        ).fetchone()
        assert tuple(minutes[0]) == export.first_response_minutes
        assert tuple(minutes[1]) == export.resolution_minutes
        assert minutes[2] == 6  # 4 answered but open + 2 not answered
        # an Ibis median on the stored table
        t = store.ibis_backend(con).table("support_tickets")
        medians = t.aggregate(
            fr=((t.first_response_at.epoch_seconds() - t.created_at.epoch_seconds()) / 3600).median(),
            res=((t.resolved_at.epoch_seconds() - t.created_at.epoch_seconds()) / 3600).median(),
        ).to_pandas().iloc[0]
        assert medians["fr"] == pytest.approx(export.median_first_response_hours)
        assert medians["res"] == pytest.approx(export.median_resolution_hours)
        # and through the support KPIs the Support page shows
        kpis = support.ticket_kpis(store.ibis_backend(con), as_of=AS_OF).iloc[0]
        assert kpis["tickets"] == 29 and kpis["open_tickets"] == 6
        assert kpis["median_first_response_hours"] == pytest.approx(export.median_first_response_hours)
        assert kpis["median_resolution_hours"] == pytest.approx(export.median_resolution_hours)


class TestTimestamps:
    def test_offsets_are_converted_to_utc_and_stored_naive(self, con):
        imported(con, ZENDESK)
        assert stored(con, "1001") == ("2026-03-02 08:00:00", "2026-03-03 08:00:00", None)  # Z; still open
        # 10:00+01:00 → 09:00 UTC; the answer and the solve were written in Z
        assert stored(con, "1005") == ("2026-03-05 09:00:00", "2026-03-05 10:15:00", "2026-03-05 21:00:00")
        # a whole row in -05:00: 08:49 → 13:49, 09:07 → 14:07, 10:49 → 15:49
        assert stored(con, "1014") == ("2026-03-17 13:49:00", "2026-03-17 14:07:00", "2026-03-17 15:49:00")
        # 03:46-05:00 on 4 March → 08:46 UTC; 03:46-05:00 on 5 March → 08:46 UTC
        assert stored(con, "1023") == ("2026-03-04 08:46:00", "2026-03-04 10:26:00", "2026-03-05 08:46:00")
        # created 09:30+01:00 = 08:30 UTC, answered 08:45Z: 15 minutes later, so kept (read without its offset
        # it would look answered 45 minutes before it was created)
        assert stored(con, "1016") == ("2026-03-10 08:30:00", "2026-03-10 08:45:00", "2026-03-10 10:00:00")
        assert con.execute("SELECT typeof(created_at) FROM support_tickets LIMIT 1").fetchone()[0] == "TIMESTAMP"

    def test_conversion_does_not_depend_on_the_session_time_zone(self, con):
        con.execute("SET TimeZone = 'Asia/Tokyo'")
        imported(con, ZENDESK)
        assert stored(con, "1005") == ("2026-03-05 09:00:00", "2026-03-05 10:15:00", "2026-03-05 21:00:00")
        assert stored(con, "1014")[0] == "2026-03-17 13:49:00"

    def test_day_first_times(self, con):
        imported(con, FRESHDESK)
        # 02/03/2026 is 2 March (18/03/2026 in the same column settles day first)
        assert stored(con, "5400") == ("2026-03-02 08:00:00", "2026-03-02 09:50:00", "2026-03-03 04:00:00")
        assert stored(con, "5405") == ("2026-03-18 13:05:00", "2026-03-18 14:09:00", "2026-03-19 00:05:00")
        assert stored(con, "5406") == ("2026-03-06 08:18:00", None, None)  # not answered yet

    def test_twelve_hour_times(self, con):
        imported(con, HUBSPOT)
        # 12:40 AM is 00:40; 2:45 AM and 3:40 AM stay in the morning
        assert stored(con, "2210010") == ("2026-03-04 00:40:00", "2026-03-04 02:45:00", "2026-03-07 03:40:00")
        # 12:05 PM is 12:05; 12:55 PM is 12:55; 9:25 PM is 21:25
        assert stored(con, "2210019") == ("2026-03-06 12:05:00", "2026-03-06 12:55:00", "2026-03-07 21:25:00")
        # 1:31 PM → 13:31, 1:11 AM the next day → 01:11
        assert stored(con, "2210022") == ("2026-03-13 13:31:00", "2026-03-13 13:59:00", "2026-03-14 01:11:00")

    @pytest.mark.parametrize(("text", "date_format", "expected", "rejected"), [
        # a Jira-style export with month names
        ("Issue key,Summary,Priority,Created,Resolved,Satisfaction\n"
         "HD-101,Refund not received,Medium,2 Mar 2026 09:15,3 Mar 2026 17:45,4\n"
         "HD-102,Login loop on app,High,13 Mar 2026 22:05,13 Mar 2026 21:50,5\n"
         "HD-103,Parcel damaged,Low,20 Mar 2026 08:00,,\n",
         "DD Mon YYYY",
         [("HD-101", "2026-03-02 09:15:00", None, "2026-03-03 17:45:00", 4),
          ("HD-103", "2026-03-20 08:00:00", None, None, None)],
         [RejectedRow(3, "Resolved, Created", "resolved before created", "2026-03-13 21:50:00, 2026-03-13 22:05:00")]),
        # a database dump: ISO with a space; one value with an offset after a space (10:15 +0100 = 09:15 UTC)
        ("ticket_id,user_id,created,first_response,closed,source,priority,rating\n"
         "T-1,U7,2026-03-02 09:15:00,2026-03-02 09:40:00,2026-03-02 11:15:00,email,normal,5\n"
         "T-2,U8,2026-03-02 10:15:00 +0100,2026-03-02 09:30:00,,chat,high,\n"
         "T-3,U9,2026-03-03 14:00:00,2026-03-03 13:59:00,2026-03-03 15:00:00,phone,low,3\n",
         "YYYY-MM-DD",
         [("T-1", "2026-03-02 09:15:00", "2026-03-02 09:40:00", "2026-03-02 11:15:00", 5),
          ("T-2", "2026-03-02 09:15:00", "2026-03-02 09:30:00", None, None)],
         [RejectedRow(4, "first_response, created", "first response before created",
                      "2026-03-03 13:59:00, 2026-03-03 14:00:00")]),
        # Jira's default export format: 02/Mar/26 9:15 AM (two-digit year, month name, 12-hour time)
        ("Issue key,Summary,Priority,Created,Resolved\n"
         "SD-7,VPN down,Highest,02/Mar/26 9:15 AM,02/Mar/26 4:40 PM\n"
         "SD-8,New laptop,Low,13/Mar/26 10:05 PM,13/Mar/26 9:50 PM\n"
         "SD-9,Printer jam,Medium,20/Mar/26 12:30 PM,\n",
         "DD/Mon/YY",
         [("SD-7", "2026-03-02 09:15:00", None, "2026-03-02 16:40:00", None),
          ("SD-9", "2026-03-20 12:30:00", None, None, None)],
         [RejectedRow(3, "Resolved, Created", "resolved before created", "2026-03-13 21:50:00, 2026-03-13 22:05:00")]),
    ], ids=["month-names", "iso-space", "jira"])
    def test_more_formats(self, con, tmp_path, text, date_format, expected, rejected):
        path = tmp_path / "tickets.csv"
        path.write_text(text, encoding="utf-8")
        r = ingest.import_file(con, path, "support_tickets")
        assert r.outcome == "committed", r.message
        assert r.detected[f"date_format[{r.mapping['created_at']}]"] == date_format
        assert list(r.rejected) == rejected
        assert con.execute(
            "SELECT ticket_id, created_at::VARCHAR, first_response_at::VARCHAR, resolved_at::VARCHAR, csat "
            "FROM support_tickets ORDER BY 1").fetchall() == expected


class TestSatisfaction:
    def test_good_bad_rating_is_left_unmapped_with_a_reason(self, con):
        r = imported(con, ZENDESK)
        assert "csat" not in r.mapping and "Satisfaction Score" in r.unmapped_columns
        assert r.warnings == (
            "column 'Satisfaction Score' is not imported as csat (Satisfaction rating 1-5): none of its values is a "
            "number (it holds 'bad', 'good', 'offered', 'unoffered') and a word has no honest number; map it by "
            "hand (--map \"Satisfaction Score=csat\") only if its values are numbers",)
        # every ticket kept, no score invented
        assert con.execute("SELECT count(*), count(csat) FROM support_tickets").fetchone() == (29, 0)

    def test_the_data_page_preview_says_the_same(self, con):
        p = ingest.preview(con, FIXTURES / ZENDESK.file, "support_tickets")
        assert p.mapping == ZENDESK.mapping
        assert len(p.warnings) == 1 and p.warnings[0].startswith("column 'Satisfaction Score' is not imported")

    def test_mapping_words_to_csat_by_hand_rejects_them_one_by_one(self, con):
        r = ingest.import_file(con, FIXTURES / ZENDESK.file, "support_tickets",
                               mapping={"Satisfaction Score": "csat"})
        assert r.outcome == "committed", r.message
        # 31 rows, 22 with a word (lines 12 and 23 among them, "good"), 9 blank: the words are rejected as what
        # they are, the blanks stored without a score
        assert (r.rows_accepted, r.rows_rejected) == (9, 22)
        assert r.rejected_by_reason == {"not a whole number in 'Satisfaction Score'": 22}
        assert con.execute("SELECT count(csat) FROM support_tickets").fetchone()[0] == 0

    def test_numeric_rating_maps_to_csat(self, con):
        imported(con, FRESHDESK)
        # 20 rated tickets: 1 ×2, 2 ×3, 3 ×2, 4 ×6, 5 ×7 → (2 + 6 + 6 + 24 + 35) / 20 = 73 / 20 = 3.65
        assert con.execute("SELECT count(csat), sum(csat) FROM support_tickets").fetchone() == (20, 73)
        kpis = support.ticket_kpis(store.ibis_backend(con), as_of=AS_OF).iloc[0]
        assert kpis["csat_mean"] == pytest.approx(3.65)


def test_cli_imports_a_help_desk_export(tmp_path):
    db = tmp_path / "crm.duckdb"
    proc = subprocess.run(
        [sys.executable, "-m", "crm_core", "import", str(FIXTURES / HUBSPOT.file), "--table", "support_tickets",
         "--format", "json"],
        cwd=ROOT, env={**os.environ, "CRM_DB": str(db)}, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout)
    assert report["outcome"] == "committed"
    assert (report["rows_read"], report["rows_accepted"], report["rows_rejected"]) == (31, 29, 2)
    assert [(x["line"], x["column"], x["reason"]) for x in report["rejected"]] == [
        (12, "Close date, Create date", "resolved before created"),
        (23, "First agent reply date, Create date", "first response before created")]
    con = store.connect(db)
    try:
        kpis = support.ticket_kpis(store.ibis_backend(con), as_of=AS_OF).iloc[0]
        assert kpis["median_first_response_hours"] == pytest.approx(0.75)  # 45 min, as above
        assert kpis["median_resolution_hours"] == pytest.approx(24.0)  # 1440 min
        assert stored(con, "2210019") == ("2026-03-06 12:05:00", "2026-03-06 12:55:00", "2026-03-07 21:25:00")
    finally:
        con.close()
