"""The board pack: sections from the core, goals and investment from stand-ins, PDF and HTML read back.

The charts are drawn once (module-scoped fixtures) with Debian's Chromium; those tests skip only when
/usr/bin/chromium is absent (CI installs it).
"""

from __future__ import annotations

import base64
import datetime as dt
import io
import re
import shutil
from pathlib import Path
from types import SimpleNamespace

import pandas as pd
import pypdf
import pytest

from crm_core import figures, metrics, narrative, report, store
from crm_core.cli import main

needs_chromium = pytest.mark.skipif(not Path(report.CHROMIUM).is_file(),
                                    reason=f"no Chromium at {report.CHROMIUM} (apt-get install chromium)")

START, AS_OF = dt.date(2026, 6, 1), dt.date(2026, 6, 30)
GENERATED = dt.datetime(2026, 7, 1, 9, 30)
VIEW_HEADINGS = 9


def _series(actual, planned):
    return pd.DataFrame({"period_end": pd.to_datetime(["2026-04-30", "2026-05-31", "2026-06-30"]),
                         "actual": actual, "planned": planned})


def _goals():
    repeat = SimpleNamespace(goal_id="G1", goal_name="Grow repeat buyers", metric="repeat_purchase_rate",
                             business_unit="Marketing", start_date=dt.date(2026, 4, 1),
                             deadline=dt.date(2026, 12, 31), baseline=0.40, target=0.50)
    csat = SimpleNamespace(goal_id="G2", goal_name="Happier support customers", metric="csat_mean",
                           business_unit="Service", start_date=dt.date(2026, 4, 1), deadline=dt.date(2026, 9, 30),
                           baseline=3.8, target=4.3)
    p_repeat = SimpleNamespace(current=0.423, baseline=0.40, target=0.50, planned=0.42, forecast=0.51,
                               status="on track", reading="Repeat buyers are on track.",
                               series=_series([0.40, 0.41, 0.423], [0.40, 0.41, 0.42]))
    p_csat = SimpleNamespace(current=3.7, baseline=3.8, target=4.3, planned=4.0, forecast=3.6, status="off track",
                             reading="CSAT is off track: 3.70 against 4.00 planned.",
                             series=_series([3.8, 3.75, 3.7], [3.8, 3.9, 4.0]))
    return [(repeat, p_repeat), (csat, p_csat)]


def _investment():
    months = list(range(0, 13))
    # cost 12,000 up front, then +1,500 a month: cumulative -12,000, -10,500, ..., +6,000 in month 12
    cumulative = [-12000 + 1500 * m for m in months]
    case = SimpleNamespace(
        cashflows=pd.DataFrame({"month": months, "net": [-12000] + [1500] * 12,
                                "cumulative_discounted_net": cumulative}),
        npv=6000.0, payback_month=8, roi=0.5, incremental_profit=18000.0, total_cost=12000.0,
        formulas=(("NPV", "Σ net_m ÷ (1 + r)^m", "−12,000 + 12 × 1,500 = 6,000"),
                  ("ROI", "(benefits − cost) ÷ cost", "(18,000 − 12,000) ÷ 12,000 = 0.5")))
    sensitivity = pd.DataFrame({"input": ["yearly_cost", "churn_pts"], "low": [9000.0, 0.5], "high": [15000.0, 1.5],
                                "npv_low": [8000.0, 1000.0], "npv_high": [4000.0, 11000.0]})
    return case, sensitivity


@pytest.fixture(scope="module")
def db(sample_store, tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("report") / "crm.duckdb"
    shutil.copy(sample_store, path)
    return path


@pytest.fixture(scope="module")
def backend(db):
    con = store.connect(db)
    yield store.ibis_backend(con)
    con.close()


@pytest.fixture(scope="module")
def pack(backend):
    return report.board_pack(backend, start=START, as_of=AS_OF, goals=_goals(), investment=_investment(),
                             title="Strategy workshop", generated_at=GENERATED)


@pytest.fixture(scope="module")
def north_masked(backend):
    return report.board_pack(backend, start=START, as_of=AS_OF, regions=("London",), goals=_goals(), mask=True,
                             generated_at=GENERATED)


@pytest.fixture(scope="module")
def emails(backend) -> list[str]:
    return backend.table("customers").select("email").to_pandas()["email"].dropna().tolist()


@pytest.fixture(scope="module")
def rendered(pack):
    images = report.chart_images(pack)
    buffer = io.BytesIO()
    report.to_pdf(pack, buffer, images=images)
    return SimpleNamespace(images=images, pdf=pypdf.PdfReader(io.BytesIO(buffer.getvalue())),
                           html=report.to_html(pack, images=images))


def _no_images(p: report.BoardPack):
    return [None] * len(p.sections)


def _html_text(p: report.BoardPack) -> str:
    return report.to_html(p, images=_no_images(p))


def _pdf_text(p: report.BoardPack) -> str:
    buffer = io.BytesIO()
    report.to_pdf(p, buffer, images=_no_images(p))
    return "\n".join(page.extract_text() for page in pypdf.PdfReader(io.BytesIO(buffer.getvalue())).pages)


def _kpi(section: report.Section, label: str) -> str:
    table = section.tables[0][1].set_index("KPI")
    return table.loc[label, "This period"]


# --------------------------------------------------------------------------------------------- the pack
class TestPack:
    def test_sections_in_order(self, pack):
        headings = [s.heading for s in pack.sections]
        # goals, 9 views, investment case and its sensitivity
        assert len(headings) == 1 + VIEW_HEADINGS + 2
        assert headings[0].startswith("Goals") and headings[-2:] == ["Investment case", "Investment sensitivity"]
        assert all(s.available for s in pack.sections)  # the sample has every table
        assert all(s.figure is not None for s in pack.sections)

    def test_dated_with_filters(self, pack):
        assert pack.date == dt.date(2026, 7, 1)
        assert pack.filters == "1 Jun 2026 – 30 Jun 2026 (30 days); all regions; all segments"

    def test_overview_is_the_core_number(self, pack, backend):
        ov = metrics.overview(backend, as_of=AS_OF, days=30)
        assert _kpi(pack.sections[1], ov["revenue"].label) == narrative.format_value(ov["revenue"].value, "currency")
        assert pack.sections[1].reading == narrative.overview_reading(ov)

    def test_region_filter_changes_the_numbers(self, pack, north_masked, backend):
        label = metrics.overview(backend, as_of=AS_OF, days=30)["revenue"].label
        everyone = float(_kpi(pack.sections[1], label).replace(",", ""))
        north = float(_kpi(north_masked.sections[1], label).replace(",", ""))
        expected = metrics.overview(backend, as_of=AS_OF, days=30, regions=("London",))["revenue"].value
        assert north == pytest.approx(expected, abs=0.5)
        assert 0 < north < everyone
        assert "regions London" in north_masked.filters

    def test_unknown_period_refused(self, backend):
        with pytest.raises(ValueError, match="start 2026-07-01 is after as_of 2026-06-30"):
            report.board_pack(backend, start=dt.date(2026, 7, 1), as_of=AS_OF)

    def test_empty_store_says_what_is_missing(self, con):
        empty = report.board_pack(store.ibis_backend(con), start=START, as_of=AS_OF, generated_at=GENERATED)
        assert len(empty.sections) == 1 + VIEW_HEADINGS
        assert not any(s.available for s in empty.sections)
        assert all(s.figure is None for s in empty.sections)
        assert "import" in empty.sections[1].reading.lower()
        # nothing to draw: the PDF needs no browser, and has the title page plus one page per section
        buffer = io.BytesIO()
        report.to_pdf(empty, buffer, browser_path="/nonexistent/chromium")
        assert len(pypdf.PdfReader(io.BytesIO(buffer.getvalue())).pages) == 1 + 1 + VIEW_HEADINGS


class TestMasking:
    def test_unmasked_pack_shows_the_top_customers_emails(self, pack, emails):
        # the value section lists the five most profitable customers with their e-mail: what masking must hide
        text = _html_text(pack)
        assert sum(e in text for e in emails) == 5

    def test_masked_pack_shows_no_email(self, north_masked, emails):
        html_text, pdf_text = _html_text(north_masked), _pdf_text(north_masked)
        assert not [e for e in emails if e in html_text or e in pdf_text]
        top = dict(north_masked.sections[3].tables)["The five most profitable customers"]
        assert top["E-mail"].str.contains("•••@•••").all()


# --------------------------------------------------------------------------------------------- goals, investment
class TestGoals:
    def test_table_and_worst_goal(self):
        s = report.goals_section(_goals())
        table = s.tables[0][1]
        assert table["Goal"].tolist() == ["Grow repeat buyers", "Happier support customers"]
        assert table["Owner"].tolist() == ["Marketing", "Service"]
        assert table["Current"].tolist() == ["42.3%", "3.70"]  # % metric ×100 with 1 decimal; a score 2 decimals
        assert table["Forecast at deadline"].tolist() == ["51.0%", "3.60"]
        assert table["Status"].tolist() == ["on track", "off track"]
        assert s.reading == "CSAT is off track: 3.70 against 4.00 planned."  # the goal furthest off track
        assert s.figure.layout.title.text == "Happier support customers: actual against plan"
        assert list(s.figure.data[1].y) == [3.8, 3.75, 3.7]
        assert s.note.startswith("2 goals: 1 off track, 1 on track.")

    def test_no_goals(self):
        s = report.goals_section([])
        assert not s.available and s.figure is None and "No goals" in s.reading


class TestInvestment:
    def test_key_numbers_and_formulas(self):
        case, sens = _investment()
        main_section, tornado = report.investment_sections(case, sens)
        numbers = dict(main_section.tables[0][1].itertuples(index=False))
        assert numbers == {"Net present value": "6,000", "Payback": "in month 8", "Return on investment": "50.0%",
                           "Incremental profit": "18,000", "Total cost": "12,000"}
        assert main_section.tables[1][1]["Quantity"].tolist() == ["NPV", "ROI"]
        assert list(main_section.figure.data[0].y)[-1] == 6000
        # churn_pts swings 1,000 → 11,000 (10,000), yearly_cost 8,000 → 4,000 (4,000): churn_pts first
        assert tornado.reading == "churn_pts moves the NPV most: from 1,000 to 11,000 across its range."
        assert list(tornado.figure.data[0].y) == ["yearly_cost", "churn_pts"]  # widest on top (last)

    def test_never_pays_back_and_no_sensitivity(self):
        case, _ = _investment()
        sections = report.investment_sections(SimpleNamespace(**{**vars(case), "payback_month": None}), None)
        assert len(sections) == 1
        assert dict(sections[0].tables[0][1].itertuples(index=False))["Payback"] == "not within the horizon"


class TestFigures:
    def test_segment_colours_and_empty_segments_dropped(self):
        summary = pd.DataFrame({"segment": ["Champions", "Lost", "New"], "customers": [10, 30, 0],
                                "share_of_customers": [0.25, 0.75, 0.0], "share_of_revenue": [0.6, 0.4, 0.0]})
        fig = figures.segment_shares_figure(summary)
        assert list(fig.data[1].y) == ["Champions", "Lost"]
        assert list(fig.data[1].marker.color) == [figures.SEGMENT_COLORS["Champions"], figures.SEGMENT_COLORS["Lost"]]
        assert fig.layout.template.layout.colorway == tuple(figures.COLORS.values())

    def test_ui_reexports_the_same_colours(self):
        from ui import charts

        assert charts.COLORS is figures.COLORS and charts.SEGMENT_COLORS is figures.SEGMENT_COLORS


# A 1×1 PNG: the CLI test checks the command, not the drawing (TestRendered draws with Chromium).
TINY_PNG = base64.b64decode("iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAQAAAC1HAwCAAAAC0lEQVR42mNkYAAAAAYAAjCB0C8AAAAASUVO"
                            "RK5CYII=")


def test_cli_writes_a_pdf(db, tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(report, "chart_images",
                        lambda pack, **_: tuple(TINY_PNG if s.figure is not None else None for s in pack.sections))
    out, html_out = tmp_path / "pack.pdf", tmp_path / "pack.html"
    rc = main(["--db", str(db), "report", "--out", str(out), "--html", str(html_out), "--start", "2026-06-01",
               "--as-of", "2026-06-30", "--region", "London", "--mask"])
    assert rc == 0
    reader = pypdf.PdfReader(out)
    assert len(reader.pages) == 1 + 1 + VIEW_HEADINGS  # title, goals (none stored), the views
    assert "regions London" in reader.pages[0].extract_text()
    assert [len(page.images) for page in reader.pages] == [0, 0] + [1] * VIEW_HEADINGS
    assert html_out.read_text(encoding="utf-8").count("data:image/png;base64,") == VIEW_HEADINGS
    assert re.search(r"board pack of 10 sections .*regions London", capsys.readouterr().err)


def test_cli_refuses_a_start_after_the_end(db, tmp_path, capsys):
    args = ["--start", "2026-07-01", "--as-of", "2026-06-30"]
    assert main(["--db", str(db), "report", "--out", str(tmp_path / "x.pdf"), *args]) == 2
    assert "start 2026-07-01 is after as_of 2026-06-30" in capsys.readouterr().err
    assert not (tmp_path / "x.pdf").exists()


def test_missing_chromium_says_what_to_install(pack):
    with pytest.raises(report.ChartRenderError, match=r"No Chromium found at /nonexistent/chromium.*apt-get install "
                                                      r"chromium"):
        report.chart_images(pack, browser_path="/nonexistent/chromium")


# --------------------------------------------------------------------------------------------- rendered
@needs_chromium
class TestRendered:
    def test_one_png_per_chart(self, pack, rendered):
        assert len(rendered.images) == len(pack.sections)
        assert all(png[:8] == b"\x89PNG\r\n\x1a\n" for png in rendered.images)

    def test_pdf_pages(self, pack, rendered):
        pages = rendered.pdf.pages
        assert len(pages) == 1 + len(pack.sections)
        title = pages[0].extract_text()
        assert "Strategy workshop" in title and "1 Jul 2026" in title
        assert "1 Jun 2026 – 30 Jun 2026 (30 days); all regions; all segments" in title
        assert all(len(page.images) == 1 for page in pages[1:])  # every section here has its chart
        assert [f"Page {i}" in page.extract_text() for i, page in enumerate(pages, start=1)] == [True] * len(pages)
        text = " ".join(" ".join(page.extract_text() for page in pages).split())  # table cells wrap lines
        assert "Grow repeat buyers" in text and "Happier support customers" in text
        assert "in month 8" in text

    def test_html_self_contained(self, pack, rendered):
        h = rendered.html
        for s in pack.sections:
            assert narrative_escape(s.heading) in h
        assert h.count("data:image/png;base64,") == len(pack.sections)
        markup = re.sub(r"data:image/png;base64,[A-Za-z0-9+/=]+", "", h)  # base64 may spell anything
        assert "http" not in markup and "<script" not in markup and "<link" not in markup and "url(" not in markup


def narrative_escape(text: str) -> str:
    import html

    return html.escape(text)
