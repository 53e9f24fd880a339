"""Browser tests: Debian's Chromium, driven by Playwright, against ``streamlit run app.py``.

Each test starts its own server(s) over its own copy of a store loaded once with the bundled sample data, so tests
do not depend on each other. Every page visited is checked for exception boxes, error alerts and 'Page not found'
dialogs, and every server log for tracebacks. The Overview and validation-report screenshots in ``docs/img`` (used
by the README) are taken here.
"""

from __future__ import annotations

import datetime as dt
import re
import shutil
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest

from crm_core import metrics, narrative, store
from tests.browser_support import (
    CHROMIUM,
    CHROMIUM_ARGS,
    PROJECT_DIR,
    RUN_TIMEOUT_MS,
    AppServer,
    chips,
    dataframe,
    grid_rows,
    main_title,
    metric,
    metric_value,
    metric_values,
    multiselect,
    nav_links,
    period_fields,
    screenshot_full_page,
    settle,
    visit,
    wait_for_charts,
)

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(not CHROMIUM.exists(), reason=f"{CHROMIUM} is missing (apt-get install chromium)"),
]
sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed (requirements-dev.txt)")
expect = sync_api.expect
expect.set_options(timeout=RUN_TIMEOUT_MS)  # an action's effect appears when its script run is done

DOCS_IMG = PROJECT_DIR / "docs" / "img"
MAIN = '[data-testid="stMain"]'
# the sidebar menu, in order
NAV = ["Overview", "Customer 360", "Segments", "Customer value", "Retention & churn", "Campaigns", "Cross-sell",
       "Support", "Fulfilment", "Goals & investment", "Data"]

# The analysis pages: URL path, title, a text every rendering shows, how many Plotly charts it draws at least.
ANALYSIS_PAGES = [
    ("segments", "Segments", "Behavioural clusters", 5),
    ("value", "Customer value", "Predicted lifetime value", 5),
    ("retention", "Retention & churn", "Churn model and the customers at risk", 3),
    ("campaigns", "Campaigns", "Performance", 4),
    ("cross_sell", "Cross-sell", "Next best offer per customer", 1),
    ("support", "Support", "Breakdown", 5),
    ("fulfilment", "Fulfilment", "What a late delivery costs", 5),
]

# A transaction log of June 2026: four purchases and one refund by three customers, then one bad amount.
#   120.50 + 389.50 + 45.00 + 699.00 - 20.00 = 1,234.00 net revenue from 4 purchases by 3 customers.
TRANSACTIONS_CSV = """\
Transaction ID,Customer ID,Date,Amount
T-260603-01,C-90001,2026-06-03,120.50
T-260607-01,C-90002,2026-06-07,389.50
T-260615-01,C-90001,2026-06-15,45.00
T-260621-01,C-90003,2026-06-21,699.00
T-260628-01,C-90002,2026-06-28,-20.00
T-260629-01,C-90004,2026-06-29,twelve
"""


# --------------------------------------------------------------------------------------------- fixtures
@pytest.fixture
def db(sample_store, tmp_path) -> Path:
    """This test's own copy of the sample store, named as the app's default store is (the sidebar shows it)."""
    path = tmp_path / "crm.duckdb"
    shutil.copyfile(sample_store, path)
    return path


@pytest.fixture(scope="module")
def browser():
    with sync_api.sync_playwright() as pw:
        chromium = pw.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


@pytest.fixture
def new_page(browser):
    """A page in a new browser context: a fresh Streamlit session, as a second browser gets."""
    contexts = []

    def make():
        context = browser.new_context(viewport={"width": 1400, "height": 1000})
        context.set_default_timeout(RUN_TIMEOUT_MS)
        contexts.append(context)
        return context.new_page()

    yield make
    for context in contexts:
        context.close()


def overview_of(db: Path, start: dt.date, end: dt.date, regions=()) -> metrics.Overview:
    con = store.connect(db)
    try:
        return metrics.overview(store.ibis_backend(con), as_of=end, days=(end - start).days + 1, regions=regions)
    finally:
        con.close()


def shown(kpi: metrics.Kpi) -> str:
    return narrative.format_value(kpi.value, kpi.unit)


def query_of(url: str) -> dict[str, list[str]]:
    return parse_qs(urlsplit(url).query)


# --------------------------------------------------------------------------------------------- scenarios
def test_fresh_server_opens_each_page_by_its_url(db, tmp_path, new_page):
    """The first visit to a new server is a shared link to a page: the page, its filters and the menu are there."""
    leinster_may = overview_of(db, dt.date(2026, 5, 1), dt.date(2026, 5, 31), ("Leinster",))

    with AppServer(db, tmp_path / "first.log") as server:
        page = new_page()
        visit(page, f"{server.url}/data?start=2026-04-01&end=2026-06-30&region=London")
        expect(main_title(page)).to_have_text("Data")
        for tab in ("Import", "Quality and duplicates", "History"):
            expect(page.get_by_role("tab", name=tab)).to_be_visible()
        expect(nav_links(page)).to_have_text(NAV)
        expect(period_fields(page).first).to_have_value("2026-04-01")
        expect(period_fields(page).last).to_have_value("2026-06-30")
        expect(chips(page, "Region")).to_have_text(["London"])
        assert urlsplit(page.url).path == "/data"
        assert query_of(page.url) == {"start": ["2026-04-01"], "end": ["2026-06-30"], "region": ["London"]}

        # the menu works from there, and the filters go with it
        page.locator('[data-testid="stSidebarNavLink"]', has_text="Overview").click()
        expect(page.locator(MAIN).get_by_text("(91 days), London")).to_be_visible()
        settle(page)
        expect(main_title(page)).to_have_text("Overview")
        assert urlsplit(page.url).path == "/"
        assert query_of(page.url) == {"start": ["2026-04-01"], "end": ["2026-06-30"], "region": ["London"]}
    server.assert_no_tracebacks()

    with AppServer(db, tmp_path / "second.log") as server:  # a new process over the same store
        page = new_page()
        visit(page, f"{server.url}/?start=2026-05-01&end=2026-05-31&region=Leinster")
        expect(main_title(page)).to_have_text("Overview")
        expect(page.locator(MAIN).get_by_text("1 May 2026 – 31 May 2026 (31 days), Leinster")).to_be_visible()
        expect(nav_links(page)).to_have_text(NAV)
        expect(period_fields(page).first).to_have_value("2026-05-01")
        expect(period_fields(page).last).to_have_value("2026-05-31")
        expect(chips(page, "Region")).to_have_text(["Leinster"])
        expect(metric_values(page)).to_have_text([shown(k) for k in leinster_may.kpis])  # 10 cards
        assert query_of(page.url) == {"start": ["2026-05-01"], "end": ["2026-05-31"], "region": ["Leinster"]}
    server.assert_no_tracebacks()


def test_shared_link_reproduces_the_view_in_another_browser(db, tmp_path, new_page):
    june_london = overview_of(db, dt.date(2026, 6, 1), dt.date(2026, 6, 30), ("London",))

    with AppServer(db, tmp_path / "server.log") as server:
        page = new_page()
        visit(page, f"{server.url}/")
        expect(page.locator(MAIN).get_by_text("(30 days), all regions")).to_be_visible()
        wait_for_charts(page, 5)
        screenshot_full_page(page, DOCS_IMG / "overview.png")

        # choose London in the sidebar
        multiselect(page, "Region").locator("input").click()
        page.keyboard.type("London")
        page.get_by_role("option", name="London", exact=True).click()
        page.keyboard.press("Escape")
        expect(page.locator(MAIN).get_by_text("(30 days), London")).to_be_visible()
        settle(page)
        link = page.url
        assert query_of(link) == {"start": ["2026-06-01"], "end": ["2026-06-30"], "region": ["London"]}
        expect(metric_values(page)).to_have_text([shown(k) for k in june_london.kpis])
        revenue_card = metric(page, "Net revenue").inner_text()  # label, value and delta

        other = new_page()  # another browser context: no shared session
        visit(other, link)
        expect(other.locator(MAIN).get_by_text("(30 days), London")).to_be_visible()
        expect(chips(other, "Region")).to_have_text(["London"])
        expect(metric(other, "Net revenue")).to_have_text(revenue_card, use_inner_text=True)
        expect(metric_values(other)).to_have_text([shown(k) for k in june_london.kpis])
    server.assert_no_tracebacks()


def test_upload_validate_commit_then_the_overview_shows_the_file(db, tmp_path, new_page):
    log = tmp_path / "june_transactions.csv"
    log.write_text(TRANSACTIONS_CSV)

    with AppServer(db, tmp_path / "server.log") as server:
        page = new_page()
        visit(page, f"{server.url}/data?start=2026-06-01&end=2026-06-30")
        main = page.locator(MAIN)

        # Choose the target and drop the file straight away, as a quick user does: the upload interrupts the run
        # the choice started (the server log must stay clean).
        main.get_by_role("combobox", name="Import into").click()
        page.get_by_role("option", name=re.compile(r"^transactions — ")).click()
        main.locator('[data-testid="stFileUploaderDropzoneInput"]').set_input_files(log)
        expect(main.get_by_text("june_transactions.csv: 4 columns")).to_be_visible()
        expect(main.get_by_role("combobox", name="ordered_at *")).to_be_visible()
        settle(page)

        # the proposed mapping: canonical column (label, * = required) ← the file's header
        expect(main.get_by_role("combobox", name="Import into")).to_have_value(re.compile(r"^transactions — "))
        for column, header in {"customer_id *": "Customer ID", "ordered_at *": "Date", "amount *": "Amount",
                               "order_id": "Transaction ID"}.items():
            expect(main.get_by_role("combobox", name=column, exact=True)).to_have_value(header)
        expect(main.locator('[data-testid="stRadio"]', has_text="Mode").get_by_label("replace")).to_be_checked()

        main.get_by_role("button", name="Validate").click()
        expect(main.get_by_text("Validation report")).to_be_visible()
        settle(page)
        expect(main.get_by_text("5 of 6 rows can be imported; 1 rejected")).to_be_visible()
        for label, value in {"Rows read": "6", "Accepted": "5", "Rejected": "1"}.items():
            expect(metric_value(page, label)).to_have_text(value)
        rejected, facts = dataframe(main, "line"), dataframe(main, "fact")
        expect(rejected).to_be_visible()
        assert grid_rows(rejected, 1) == [["7", "Amount", "not a number", "twelve"]]  # line, column, reason, value
        assert ["net revenue", "1,234.00"] in grid_rows(facts, 6)  # orders, customers, refunds, net, first, last
        screenshot_full_page(page, DOCS_IMG / "data-report.png")

        main.get_by_role("button", name="Commit import").click()
        expect(main.get_by_text("Last import")).to_be_visible()
        settle(page)
        expect(main.locator('[data-testid="stAlertContentSuccess"]')).to_contain_text(
            "5 of 6 rows imported; 1 rejected")
        expect(main.locator('[data-testid="stFileUploaderFile"]')).to_have_count(0)  # ready for the next file
        expect(main.get_by_role("button", name="Validate")).to_have_count(0)

        visit(page, f"{server.url}/?start=2026-06-01&end=2026-06-30")
        expect(page.locator(MAIN).get_by_text("(30 days), all regions")).to_be_visible()
        expected = {"Net revenue": "1,234", "Orders": "4", "Active customers": "3",
                    "Return rate": "1.6%"}  # 20 refunded of 1,254 sold
        for label, value in expected.items():
            expect(metric_value(page, label)).to_have_text(value)
        expect(page.locator(MAIN).get_by_text("net revenue was 1,234")).to_be_visible()
    server.assert_no_tracebacks()


@pytest.mark.parametrize(("path", "title", "marker", "charts"), ANALYSIS_PAGES, ids=[p[0] for p in ANALYSIS_PAGES])
def test_analysis_page_by_its_url_on_a_fresh_server(db, tmp_path, new_page, path, title, marker, charts):
    """Each analysis page opened first by a shared link: title, charts drawn, filters kept, no errors; screenshot."""
    with AppServer(db, tmp_path / "server.log") as server:
        page = new_page()
        visit(page, f"{server.url}/{path}?start=2026-04-01&end=2026-06-30")
        expect(main_title(page)).to_have_text(title)
        expect(page.locator(MAIN).get_by_text(marker, exact=True).first).to_be_visible()
        page.wait_for_function(
            "n => document.querySelectorAll('[data-testid=stPlotlyChart] .js-plotly-plot .main-svg').length >= n",
            arg=charts, timeout=RUN_TIMEOUT_MS)
        settle(page)
        expect(nav_links(page)).to_have_text(NAV)
        assert query_of(page.url) == {"start": ["2026-04-01"], "end": ["2026-06-30"]}
        screenshot_full_page(page, DOCS_IMG / f"{path}.png")
    server.assert_no_tracebacks()


def test_campaign_export_without_a_campaign_column_imports_and_shows_its_lift(db, tmp_path, new_page):
    """A Hillstrom-style export (one row per contacted customer, no campaign column, arms named 'Mens E-Mail' and
    'No E-Mail'): map segment → contact_group, give campaign_id one value for every row, commit; the Campaigns page
    then reads its lift."""
    export = PROJECT_DIR / "tests" / "fixtures" / "campaign_export_hillstrom_week1.csv"
    with AppServer(db, tmp_path / "server.log") as server:
        page = new_page()
        visit(page, f"{server.url}/data")
        main = page.locator(MAIN)
        main.get_by_role("combobox", name="Import into").click()
        page.get_by_role("option", name=re.compile(r"^campaign_contacts — ")).click()
        settle(page)
        main.locator('[data-testid="stFileUploaderDropzoneInput"]').set_input_files(export)
        expect(main.get_by_text("campaign_export_hillstrom_week1.csv: 13 columns")).to_be_visible()
        settle(page)
        main.get_by_role("combobox", name="contact_group", exact=True).click()
        page.get_by_role("option", name="segment", exact=True).click()
        settle(page)
        expect(main.get_by_role("combobox", name="Column")).to_have_value("campaign_id")  # the missing required one
        main.get_by_label("Value").fill("HILL1")
        main.get_by_label("Value").press("Enter")
        settle(page)
        main.get_by_role("button", name="Validate").click()
        expect(main.get_by_text("Validation report")).to_be_visible()
        settle(page)
        expect(main.get_by_text("12 of 12 rows can be imported")).to_be_visible()
        main.get_by_role("button", name="Commit import").click()
        expect(main.get_by_text("Last import")).to_be_visible()
        settle(page)

        visit(page, f"{server.url}/campaigns")
        page.get_by_role("tab", name="Lift", exact=True).click()
        # 3 of 8 e-mailed customers converted against 1 of 4 held out (worked by hand in tests/test_campaigns.py)
        expect(page.locator(MAIN).get_by_text(re.compile(r"^HILL1: treated customers converted at 37\.5% against "
                                                         r"25\.0%"))).to_be_visible()
    server.assert_no_tracebacks()


def test_helpdesk_export_imports_and_the_support_page_shows_its_medians(db, tmp_path, new_page):
    """A Freshdesk-style export (day-first timestamps, its own headers) imports without a mapping (the rows
    resolved or answered before they were created are rejected: 29 of 31 rows); the Support page then shows the
    export's medians (hand-computed in tests/test_helpdesk_import.py: first reply 90 min, resolution 600 min)."""
    export = PROJECT_DIR / "tests" / "fixtures" / "helpdesk_freshdesk_dayfirst.csv"
    with AppServer(db, tmp_path / "server.log") as server:
        page = new_page()
        visit(page, f"{server.url}/data")
        main = page.locator(MAIN)
        main.get_by_role("combobox", name="Import into").click()
        page.get_by_role("option", name=re.compile(r"^support_tickets — ")).click()
        settle(page)
        main.locator('[data-testid="stFileUploaderDropzoneInput"]').set_input_files(export)
        expect(main.get_by_text("helpdesk_freshdesk_dayfirst.csv: 15 columns")).to_be_visible()
        settle(page)
        main.get_by_role("button", name="Validate").click()
        expect(main.get_by_text("Validation report")).to_be_visible()
        settle(page)
        expect(main.get_by_text("29 of 31 rows can be imported")).to_be_visible()
        main.get_by_role("button", name="Commit import").click()
        expect(main.get_by_text("Last import")).to_be_visible()
        settle(page)

        visit(page, f"{server.url}/support?start=2026-03-01&end=2026-03-31")
        expect(main_title(page)).to_have_text("Support")
        expect(metric_value(page, "Tickets")).to_have_text("29")
        expect(metric_value(page, "Median first response (h)")).to_have_text("1.50")
    server.assert_no_tracebacks()


def test_customer_360_search_a_customer_add_a_note_and_find_it_after_a_reload(db, tmp_path, new_page):
    """Search by e-mail, open the customer, save a note; a shared link to the customer on a fresh page shows it."""
    con = store.connect(db)
    try:
        customer_id, email = con.execute(
            "SELECT customer_id, email FROM customers WHERE email IS NOT NULL ORDER BY customer_id LIMIT 1 OFFSET 99"
        ).fetchone()
    finally:
        con.close()
    note = "Prefers a call after 5 pm (browser test)"
    with AppServer(db, tmp_path / "server.log") as server:
        page = new_page()
        visit(page, f"{server.url}/customer")
        expect(main_title(page)).to_have_text("Customer 360")
        box = page.get_by_role("textbox", name="Find a customer (id, e-mail or name)", exact=True)
        box.fill(email.upper())
        box.press("Enter")
        settle(page)
        expect(page.locator(MAIN).get_by_role("heading", name="Timeline")).to_be_visible()
        assert query_of(page.url).get("customer") == [customer_id]
        page.get_by_role("textbox", name="Author", exact=True).fill("Ana")
        page.get_by_role("textbox", name="Note", exact=True).fill(note)
        page.get_by_role("button", name="Save note").click()
        expect(page.locator(MAIN).get_by_text("Note saved.")).to_be_visible()
        settle(page)

        other = new_page()  # a shared link, opened in another browser
        visit(other, f"{server.url}/customer?customer={customer_id}")
        expect(other.locator(MAIN).get_by_role("heading", name="Notes")).to_be_visible()
        settle(other)
    server.assert_no_tracebacks()
    con = store.connect(db, read_only=True)
    try:
        assert con.execute("SELECT author FROM customer_notes WHERE customer_id = ? AND note = ?",
                           [customer_id, note]).fetchall() == [("Ana",)]
    finally:
        con.close()


def test_goals_set_a_goal_reload_and_download_the_board_pack(db, tmp_path, new_page):
    """A workshop sets a goal, reloads and finds it stored, then downloads the board pack, which names the goal."""
    from pypdf import PdfReader

    name = "Churn under 30% by Christmas (browser test)"
    with AppServer(db, tmp_path / "server.log") as server:
        page = new_page()
        visit(page, f"{server.url}/goals?start=2026-04-01&end=2026-06-30")
        expect(main_title(page)).to_have_text("Goals & investment")
        expect(page.locator(MAIN).get_by_text("No goals yet.")).to_be_visible()
        page.get_by_role("textbox", name="Goal", exact=True).fill(name)
        page.get_by_role("combobox", name="Metric", exact=True).click()
        page.get_by_role("option", name="Churn rate", exact=True).click()
        target = page.get_by_role("spinbutton", name="Target (in the metric's unit: % for rates)")
        target.fill("30")
        target.press("Tab")
        page.get_by_role("button", name="Set the goal").click()
        expect(page.locator(MAIN).get_by_text(f"Saved “{name}”")).to_be_visible()
        settle(page)

        page.reload()  # a new session: the goal comes back from the database
        page.locator(MAIN).locator("h1").first.wait_for()
        expect(page.locator(MAIN).get_by_role("heading", name=name)).to_be_visible()
        settle(page)

        page.get_by_role("tab", name="Board pack").click()
        page.get_by_role("button", name="Build the board pack").click()
        button = page.get_by_role("button", name="Download the board pack (PDF)")
        expect(button).to_be_visible(timeout=180_000)
        with page.expect_download() as download:
            button.click()
        pdf_path = tmp_path / download.value.suggested_filename
        download.value.save_as(pdf_path)
        settle(page)
    server.assert_no_tracebacks()
    assert pdf_path.name == "crm-board-pack-2026-06-30.pdf"
    text = "\n".join(p.extract_text() for p in PdfReader(pdf_path).pages)
    assert name in text.replace("\n", " ")
    con = store.connect(db, read_only=True)
    try:
        assert con.execute("SELECT goal_name, metric, target FROM goals").fetchall() == [(name, "churn_rate", 0.30)]
    finally:
        con.close()
