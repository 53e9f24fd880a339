"""The canonical CRM data model: tables, columns, types, keys and header synonyms.

One row of ``TABLES`` per canonical table; everything else in the app (import mapping, the store's DDL,
``docs/data-model.md``) is derived from this module, so the model is defined exactly once.

Logical types map to SQL types that DuckDB, PostgreSQL and Spark all have:

======== =========== ====================================================================
logical  SQL         notes
======== =========== ====================================================================
id       VARCHAR     identifiers stay text: ``00123`` keeps its zeros, 18-digit ids stay exact
text     VARCHAR
int      BIGINT
number   DOUBLE
money    DOUBLE      in the data's own currency; sign kept (refunds are negative)
date     DATE
ts       TIMESTAMP   a date alone is read as midnight
bool     BOOLEAN     true/false, yes/no, y/n, 1/0 (any case)
======== =========== ====================================================================
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass, field

__all__ = [
    "Column",
    "Table",
    "TABLES",
    "SOURCE_SHAPES",
    "SQL_TYPES",
    "get_table",
    "normalize_header",
    "table_ddl",
]

SQL_TYPES: dict[str, str] = {
    "id": "VARCHAR",
    "text": "VARCHAR",
    "int": "BIGINT",
    "number": "DOUBLE",
    "money": "DOUBLE",
    "date": "DATE",
    "ts": "TIMESTAMP",
    "bool": "BOOLEAN",
}


@dataclass(frozen=True)
class Column:
    """One canonical column: its logical type, whether an import must provide it, and the headers it answers to."""

    name: str
    type: str
    description: str
    required: bool = False
    synonyms: tuple[str, ...] = ()
    check: str | None = None  # a SQL predicate on the column ("{c} BETWEEN 0 AND 10"); failing rows are rejected
    check_reason: str | None = None

    @property
    def sql_type(self) -> str:
        return SQL_TYPES[self.type]


@dataclass(frozen=True)
class Table:
    """One canonical table; ``key`` identifies a row for duplicates and upserts."""

    name: str
    grain: str
    description: str
    columns: tuple[Column, ...]
    key: tuple[str, ...]
    optional: bool = True
    row_checks: tuple[tuple[str, str], ...] = field(default=())  # (SQL predicate that must hold, reason)

    @property
    def column_names(self) -> list[str]:
        return [c.name for c in self.columns]

    def column(self, name: str) -> Column:
        for c in self.columns:
            if c.name == name:
                return c
        raise KeyError(f"table {self.name!r} has no column {name!r}")

    @property
    def required_columns(self) -> list[str]:
        return [c.name for c in self.columns if c.required]


def _c(name, type_, description, required=False, synonyms=(), check=None, check_reason=None) -> Column:
    return Column(name, type_, description, required, tuple(synonyms), check, check_reason)


_CUSTOMER_ID_SYNONYMS = ("Customer ID", "CustomerID", "cust_id", "customer", "client_id", "client id",
                         "customer_no", "customer number", "Customer Number", "account_id", "contact_id",
                         "user_id", "buyer_id", "member_id", "requester_id", "customer_key")

CUSTOMERS = Table(
    "customers",
    grain="one row per customer",
    description="People or companies who buy. Everything else links here through customer_id.",
    optional=False,
    key=("customer_id",),
    columns=(
        _c("customer_id", "id", "Unique customer identifier, kept as text.", True, _CUSTOMER_ID_SYNONYMS),
        _c("name", "text", "Full name (or company name).", synonyms=("full_name", "Full Name", "customer_name",
                                                                       "Customer Name", "contact_name", "client_name")),
        _c("first_name", "text", "Given name.", synonyms=("firstname", "First Name", "given_name", "forename")),
        _c("last_name", "text", "Family name.", synonyms=("lastname", "Last Name", "surname", "family_name")),
        _c("email", "text", "E-mail address.", synonyms=("e-mail", "Email Address", "email_address", "mail")),
        _c("phone", "text", "Phone number as written; kept as text so +44 and leading zeros survive.",
           synonyms=("phone_number", "Phone Number", "telephone", "tel", "mobile", "cell")),
        _c("signup_date", "date", "Date the customer was acquired (first registration or first order).",
           synonyms=("signup", "created_at", "created", "registration_date", "customer_since", "join_date",
                     "date_joined", "acquired_at", "first_seen")),
        _c("country", "text", "Country name or ISO code.", synonyms=("country_code", "Country Name", "nation")),
        _c("region", "text", "Sales region or state.", synonyms=("state", "province", "territory", "area",
                                                                 "sales_region")),
        _c("city", "text", "City.", synonyms=("town",)),
        _c("postcode", "text", "Postal code, kept as text.", synonyms=("zip", "zip_code", "postal_code",
                                                                        "Post Code", "postcode")),
        _c("acquisition_channel", "text", "Channel that brought the customer (web, store, referral, partner ...).",
           synonyms=("channel", "source", "acquisition_source", "lead_source", "utm_source")),
        _c("gender", "text", "Gender as recorded.", synonyms=("sex",)),
        _c("birth_year", "int", "Year of birth.", synonyms=("year_of_birth", "yob"),
           check="{c} BETWEEN 1900 AND 2030", check_reason="birth year outside 1900-2030"),
        _c("age", "int", "Age in years when exported.", check="{c} BETWEEN 0 AND 130",
           check_reason="age outside 0-130"),
        _c("income_band", "text", "Income band or other demographic class.", synonyms=("income",)),
        _c("is_web_registered", "bool", "Has a web account.", synonyms=("web_registered", "registered_online",
                                                                        "has_account", "online_account")),
        _c("referred_by", "id", "customer_id of the customer who referred this one.",
           synonyms=("referrer", "referrer_id", "referred_by_customer_id", "referral_id")),
    ),
)

ORDERS = Table(
    "orders",
    grain="one row per order (a return or cancellation is its own order with a negative amount)",
    description="Purchases. Net revenue = sum of amount, returns included as negative amounts.",
    optional=False,
    key=("order_id",),
    columns=(
        _c("order_id", "id", "Unique order (invoice) identifier.", True,
           ("Order ID", "OrderID", "order_no", "order_number", "invoice", "invoice_id", "InvoiceNo",
            "Invoice", "transaction_id", "receipt_id")),
        _c("customer_id", "id", "Buyer; blank for anonymous (guest) orders.", synonyms=_CUSTOMER_ID_SYNONYMS),
        _c("ordered_at", "ts", "When the order was placed.", True,
           ("order_date", "Order Date", "date", "InvoiceDate", "invoice_date", "purchase_date",
            "transaction_date", "created_at", "timestamp", "datetime", "order_datetime")),
        _c("amount", "money", "Order total net of discounts; negative for returns.", True,
           ("total", "order_total", "Total", "revenue", "value", "sales", "amount_usd", "price", "spend",
            "monetary_value", "dollar_value", "order_value", "net_amount", "grand_total")),
        _c("channel", "text", "Sales channel (web, store, phone, marketplace).", synonyms=("sales_channel",
                                                                                          "order_channel")),
        _c("status", "text", "Order status (completed, cancelled, returned ...).", synonyms=("order_status",)),
        _c("is_return", "bool", "The order is a return, refund or cancellation.",
           synonyms=("return", "is_refund", "refund", "cancelled", "is_cancelled")),
        _c("currency", "text", "Currency code.", synonyms=("currency_code",)),
        _c("discount", "money", "Discount granted on the order.", synonyms=("discount_amount",)),
        _c("shipping_cost", "money", "Cost of shipping the order to us.", synonyms=("shipping", "freight")),
    ),
)

ORDER_ITEMS = Table(
    "order_items",
    grain="one row per order line",
    description="Lines of an order: which product, how many, at what price. Quantity is negative on returns.",
    key=("order_id", "line_number"),
    columns=(
        _c("order_id", "id", "Order the line belongs to.", True, ("Order ID", "OrderID", "invoice", "InvoiceNo",
                                                                  "invoice_id", "order_no")),
        _c("line_number", "int", "Position of the line in the order (1, 2, ...).", True,
           ("line", "line_no", "item_no", "position")),
        _c("product_id", "id", "Product (SKU).", True, ("sku", "StockCode", "stock_code", "product", "item_id",
                                                        "article", "product_code")),
        _c("quantity", "number", "Units; negative on returns.", True, ("qty", "Quantity", "units")),
        _c("unit_price", "money", "Price per unit charged to the customer.", True,
           ("price", "UnitPrice", "Unit Price", "item_price")),
        _c("discount", "money", "Discount on the line.", synonyms=("line_discount",)),
    ),
)

PRODUCTS = Table(
    "products",
    grain="one row per product",
    description="Catalogue with unit cost, for gross margin.",
    key=("product_id",),
    columns=(
        _c("product_id", "id", "Product (SKU).", True, ("sku", "StockCode", "stock_code", "item_id", "product_code")),
        _c("product_name", "text", "Name or description.", synonyms=("name", "description", "Description", "title",
                                                                     "item_name")),
        _c("category", "text", "Product category.", synonyms=("product_category", "department", "family")),
        _c("list_price", "money", "Catalogue price per unit.", synonyms=("price", "unit_price", "UnitPrice")),
        _c("unit_cost", "money", "Our cost per unit (for gross margin).", synonyms=("cost", "cogs", "cost_price",
                                                                                    "purchase_price")),
    ),
)

CAMPAIGNS = Table(
    "campaigns",
    grain="one row per campaign",
    description="Marketing campaigns with channel, dates and cost.",
    key=("campaign_id",),
    columns=(
        _c("campaign_id", "id", "Unique campaign identifier.", True, ("Campaign ID", "campaign", "campaign_code")),
        _c("campaign_name", "text", "Name.", synonyms=("name", "title")),
        _c("channel", "text", "email, sms, direct mail, phone, social ...", synonyms=("medium", "campaign_channel")),
        _c("start_date", "date", "First day.", synonyms=("start", "launch_date", "sent_date")),
        _c("end_date", "date", "Last day.", synonyms=("end",)),
        _c("cost", "money", "Total cost of the campaign.", synonyms=("budget", "spend", "total_cost")),
        _c("target_segment", "text", "Segment the campaign aimed at.", synonyms=("segment", "audience")),
        _c("offer", "text", "Offer made (discount, free shipping ...).", synonyms=("promotion",)),
    ),
    row_checks=(("end_date IS NULL OR start_date IS NULL OR end_date >= start_date", "end_date before start_date"),),
)

CAMPAIGN_CONTACTS = Table(
    "campaign_contacts",
    grain="one row per campaign and contacted (or held-out control) customer",
    description="Who was targeted, in which group, and what they did. Control rows were held out (not sent).",
    key=("campaign_id", "customer_id"),
    columns=(
        _c("campaign_id", "id", "Campaign.", True, ("Campaign ID", "campaign")),
        _c("customer_id", "id", "Customer.", True, _CUSTOMER_ID_SYNONYMS),
        _c("contact_group", "text", "treatment or control (held out at random).",
           synonyms=("group", "test_group", "treatment", "arm", "variant", "segment_group", "holdout")),
        _c("contacted_at", "ts", "When the contact was sent.", synonyms=("sent_at", "contact_date", "send_date",
                                                                         "date")),
        _c("is_sent", "bool", "The message was sent.", synonyms=("sent", "delivered")),
        _c("is_opened", "bool", "Opened.", synonyms=("opened", "open")),
        _c("is_clicked", "bool", "Clicked.", synonyms=("clicked", "click", "visit", "visited")),
        _c("is_responded", "bool", "Responded (replied, visited the offer).", synonyms=("responded", "response")),
        _c("is_converted", "bool", "Bought because of the campaign (within its window).",
           synonyms=("converted", "conversion", "purchased")),
        _c("attributed_revenue", "money", "Revenue the source system attributed to this contact.",
           synonyms=("revenue", "spend", "conversion_value", "sales")),
        _c("contact_cost", "money", "Cost of this contact.", synonyms=("cost", "cost_per_contact")),
    ),
)

SUPPORT_TICKETS = Table(
    "support_tickets",
    grain="one row per support ticket",
    description="Help-desk tickets: timing clocks, channel, priority, category, agent, satisfaction.",
    key=("ticket_id",),
    columns=(
        _c("ticket_id", "id", "Unique ticket identifier.", True, ("Ticket ID", "ticket", "case_id", "case_number",
                                                                  "id", "issue_id", "issue_key")),
        _c("customer_id", "id", "Customer who raised it.", synonyms=_CUSTOMER_ID_SYNONYMS),
        _c("created_at", "ts", "Opened.", True, ("created", "opened_at", "Created", "date_opened", "open_date",
                                                 "submitted_at", "created_time", "create_date", "date_created")),
        _c("first_response_at", "ts", "First reply by an agent.",
           synonyms=("first_response", "first_reply_at", "responded_at",
                     "initial_response_time", "first_responded_at", "first_agent_reply_date")),
        _c("resolved_at", "ts", "Resolved or closed; blank while open.",
           synonyms=("resolved", "closed_at", "closed", "solved_at", "resolved_time", "close_date",
                     "resolution_date")),
        _c("channel", "text", "email, phone, chat, web form, social ...", synonyms=("source", "via", "medium")),
        _c("priority", "text", "low, normal, high, urgent.", synonyms=("severity", "urgency")),
        _c("category", "text", "Topic, including complaint and compliment.", synonyms=("type", "topic", "reason",
                                                                                       "ticket_type")),
        _c("agent", "text", "Agent or team that handled it.", synonyms=("assignee", "owner", "agent_name",
                                                                        "ticket_owner")),
        _c("csat", "int", "Satisfaction rating 1-5.", synonyms=("rating", "satisfaction", "csat_score", "score",
                                                                "satisfaction_score", "satisfaction_rating"),
           check="{c} BETWEEN 1 AND 5", check_reason="CSAT outside 1-5"),
        _c("is_reopened", "bool", "Was reopened after resolution.", synonyms=("reopened",)),
        _c("contact_count", "int", "Contacts (messages, calls) in the ticket.", synonyms=("contacts", "replies",
                                                                                         "touches")),
        _c("subject", "text", "Subject or first comment.", synonyms=("title", "comment", "description",
                                                                    "ticket_name", "summary")),
    ),
    row_checks=(
        ("resolved_at IS NULL OR created_at IS NULL OR resolved_at >= created_at", "resolved before created"),
        ("first_response_at IS NULL OR created_at IS NULL OR first_response_at >= created_at",
         "first response before created"),
    ),
)

SHIPMENTS = Table(
    "shipments",
    grain="one row per shipment (an order may ship in several)",
    description="Fulfilment: promised, shipped and delivered dates, carrier.",
    key=("shipment_id",),
    columns=(
        _c("shipment_id", "id", "Unique shipment identifier.", True, ("tracking_number", "tracking_id",
                                                                      "consignment", "parcel_id")),
        _c("order_id", "id", "Order shipped.", True, ("Order ID", "OrderID", "order_no", "invoice")),
        _c("carrier", "text", "Carrier.", synonyms=("courier", "shipper", "delivery_company")),
        _c("promised_date", "date", "Delivery date promised to the customer.", synonyms=("promised", "due_date",
                                                                                         "expected_delivery")),
        _c("shipped_at", "ts", "Left the warehouse.", synonyms=("shipped", "ship_date", "dispatched_at")),
        _c("delivered_at", "ts", "Delivered; blank if not yet.", synonyms=("delivered", "delivery_date")),
        _c("shipping_cost", "money", "What the shipment cost us.", synonyms=("cost", "freight_cost")),
    ),
    row_checks=(("delivered_at IS NULL OR shipped_at IS NULL OR delivered_at >= shipped_at",
                 "delivered before shipped"),),
)

SURVEYS = Table(
    "surveys",
    grain="one row per survey answer",
    description="Net Promoter Score answers with the customer's comment.",
    key=("survey_id",),
    columns=(
        _c("survey_id", "id", "Unique answer identifier.", True, ("response_id", "answer_id")),
        _c("customer_id", "id", "Customer who answered.", synonyms=_CUSTOMER_ID_SYNONYMS),
        _c("responded_at", "ts", "When they answered.", True, ("date", "submitted_at", "answered_at", "created_at")),
        _c("nps_score", "int", "Likelihood to recommend, 0-10.", True, ("nps", "score", "rating",
                                                                       "likelihood_to_recommend"),
           check="{c} BETWEEN 0 AND 10", check_reason="NPS score outside 0-10"),
        _c("comment", "text", "Free-text comment.", synonyms=("comments", "feedback", "verbatim", "text")),
        _c("channel", "text", "How the survey was answered.", synonyms=("source",)),
    ),
)

CUSTOMER_NOTES = Table(
    "customer_notes",
    grain="one row per note",
    description="Things staff remember about a customer.",
    key=("note_id",),
    columns=(
        _c("note_id", "id", "Unique note identifier.", True, ("id",)),
        _c("customer_id", "id", "Customer.", True, _CUSTOMER_ID_SYNONYMS),
        _c("created_at", "ts", "When written.", True, ("date", "created", "timestamp")),
        _c("author", "text", "Who wrote it.", synonyms=("user", "created_by", "agent")),
        _c("note", "text", "The note.", True, ("text", "body", "comment", "notes")),
    ),
)

GOALS = Table(
    "goals",
    grain="one row per goal",
    description="Measurable goals set in a workshop: metric, baseline, target, deadline, owner.",
    key=("goal_id",),
    columns=(
        _c("goal_id", "id", "Unique goal identifier.", True, ("id",)),
        _c("goal_name", "text", "What the goal says.", True, ("name", "goal", "title")),
        _c("metric", "text", "Metric name as the core computes it (e.g. retention_rate).", True, ("kpi",)),
        _c("business_unit", "text", "Owner: Sales, Marketing, Service or Support.", synonyms=("owner", "unit",
                                                                                             "team")),
        _c("start_date", "date", "Baseline date.", True, ("start", "baseline_date")),
        _c("deadline", "date", "Date the target must be reached.", True, ("end_date", "due_date", "target_date")),
        _c("baseline", "number", "Metric value at start_date.", synonyms=("baseline_value",)),
        _c("target", "number", "Target value.", True, ("target_value",)),
        _c("created_at", "ts", "When the goal was set.", synonyms=("created",)),
        _c("updated_at", "ts", "When the goal was last changed.", synonyms=("modified_at", "last_modified")),
        _c("author", "text", "Who set or last changed the goal.", synonyms=("created_by", "set_by")),
        _c("monthly_targets", "text", "Optional planned path: JSON object of month (YYYY-MM) to the value planned "
           "at that month's end, e.g. {\"2026-09\": 0.52}.", synonyms=("milestones", "monthly_targets_json")),
    ),
    row_checks=(("deadline >= start_date", "deadline before start_date"),),
)

TABLES: dict[str, Table] = {t.name: t for t in (CUSTOMERS, ORDERS, ORDER_ITEMS, PRODUCTS, CAMPAIGNS,
                                                CAMPAIGN_CONTACTS, SUPPORT_TICKETS, SHIPMENTS, SURVEYS,
                                                CUSTOMER_NOTES, GOALS)}

# Source shapes: common export layouts that are not one canonical table but expand into several.
INVOICE_LINES = Table(
    "invoice_lines",
    grain="one row per invoice line, as retail and e-shop systems export it",
    description=("Expands into orders, order_items, products and customers. Invoice ids starting with 'C' "
                 "and negative quantities are returns; exact duplicate lines are dropped and counted."),
    key=(),
    columns=(
        _c("invoice_id", "id", "Invoice number; a leading 'C' marks a cancellation.", True,
           ("InvoiceNo", "Invoice", "invoice", "invoice_no", "order_id", "Order ID", "order_no", "receipt_id")),
        _c("product_id", "id", "Stock code.", True, ("StockCode", "stock_code", "sku", "product", "item_id")),
        _c("description", "text", "Product description.", synonyms=("Description", "product_name", "item_name")),
        _c("quantity", "number", "Units; negative on returns.", True, ("Quantity", "qty", "units")),
        _c("invoiced_at", "ts", "Invoice date and time.", True, ("InvoiceDate", "invoice_date", "date",
                                                                 "order_date", "ordered_at")),
        _c("unit_price", "money", "Price per unit.", True, ("UnitPrice", "Price", "unit price", "price")),
        _c("customer_id", "id", "Customer; blank for guests.", synonyms=_CUSTOMER_ID_SYNONYMS),
        _c("country", "text", "Customer country.", synonyms=("Country",)),
    ),
)

TRANSACTIONS = Table(
    "transactions",
    grain="one row per purchase: customer id, date, amount (a bare transaction log)",
    description="Expands into orders (and customers); enough for RFM and CLV.",
    key=(),
    columns=(
        _c("customer_id", "id", "Customer.", True, _CUSTOMER_ID_SYNONYMS),
        _c("ordered_at", "ts", "Purchase date.", True, ("date", "order_date", "InvoiceDate", "purchase_date",
                                                       "transaction_date", "datetime", "timestamp")),
        _c("amount", "money", "Amount; negative for refunds.", True, ("value", "revenue", "total", "sales",
                                                                     "monetary_value", "dollar_value", "spend",
                                                                     "price")),
        _c("order_id", "id", "Transaction id if the log has one.", synonyms=("transaction_id", "invoice", "InvoiceNo",
                                                                           "order_no")),
    ),
)

SOURCE_SHAPES: dict[str, Table] = {t.name: t for t in (INVOICE_LINES, TRANSACTIONS)}


def get_table(name: str) -> Table:
    """The canonical table or source shape called ``name``; a clear error listing the choices otherwise."""
    if name in TABLES:
        return TABLES[name]
    if name in SOURCE_SHAPES:
        return SOURCE_SHAPES[name]
    choices = ", ".join([*TABLES, *SOURCE_SHAPES])
    raise ValueError(f"Unknown table {name!r}; choose one of: {choices}")


def normalize_header(header: str) -> str:
    """Header text → a comparable token: ``"Customer ID"``, ``"customerId"``, ``"CUSTOMER-ID"`` → ``customer_id``.

    >>> normalize_header("\\ufeffCustomer ID ")
    'customer_id'
    >>> normalize_header("InvoiceDate")
    'invoice_date'
    """
    text = unicodedata.normalize("NFKD", str(header)).encode("ascii", "ignore").decode("ascii")
    text = re.sub(r"([a-z0-9])([A-Z])", r"\1_\2", text.strip())
    text = re.sub(r"[^0-9a-zA-Z]+", "_", text).strip("_").lower()
    return text


def table_ddl(table: Table, name: str | None = None) -> str:
    """``CREATE TABLE`` statement for a canonical table (identifiers quoted)."""
    cols = ", ".join(f'"{c.name}" {c.sql_type}' for c in table.columns)
    return f'CREATE TABLE IF NOT EXISTS "{name or table.name}" ({cols})'


def data_model_markdown() -> str:
    """The tables section of ``docs/data-model.md``, generated from this module (a test keeps them in sync)."""
    out: list[str] = []

    def section(t: Table, heading: str) -> None:
        key = ", ".join(f"`{k}`" for k in t.key) if t.key else "none (expands into canonical tables)"
        out.append(f"### {heading}\n")
        out.append(f"Grain: {t.grain}. Key: {key}.{'' if t.optional else ' Core table.'}\n")
        out.append(f"{t.description}\n")
        out.append("| column | type | required | meaning | also recognised as |")
        out.append("|---|---|---|---|---|")
        for c in t.columns:
            syn = ", ".join(f"`{s}`" for s in c.synonyms)
            rule = f" Rule: {c.check_reason.replace(' outside ', ' within ')}." if c.check_reason else ""
            out.append(f"| `{c.name}` | {c.type} ({c.sql_type}) | {'yes' if c.required else ''} | "
                       f"{c.description}{rule} | {syn} |")
        if t.row_checks:
            out.append("")
            out.append("Row rules (a row breaking one is rejected with its line): "
                       + "; ".join(f"no {reason}" for _, reason in t.row_checks) + ".")
        out.append("")

    out.append("## Canonical tables\n")
    for t in TABLES.values():
        section(t, f"`{t.name}`")
    out.append("## Source shapes\n")
    out.append("Export layouts that are not one canonical table; import them with `--table <shape>`.\n")
    for t in SOURCE_SHAPES.values():
        section(t, f"`{t.name}`")
    return "\n".join(out).rstrip() + "\n"


GENERATED_MARKER = "<!-- everything below is generated from crm_core/schema.py: python -m crm_core.schema -->"


def write_data_model_doc(path) -> None:
    """Rewrite the generated part of ``docs/data-model.md`` (everything after the marker line)."""
    from pathlib import Path

    p = Path(path)
    head = p.read_text(encoding="utf-8").split(GENERATED_MARKER)[0] if p.exists() else ""
    p.write_text(head + GENERATED_MARKER + "\n\n" + data_model_markdown(), encoding="utf-8")


if __name__ == "__main__":  # pragma: no cover
    from pathlib import Path

    write_data_model_doc(Path(__file__).resolve().parent.parent / "docs" / "data-model.md")
