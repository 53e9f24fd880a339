from pathlib import Path

import pytest

from crm_core import schema

DOC = Path(__file__).resolve().parent.parent / "docs" / "data-model.md"


def test_doc_is_generated_from_schema():
    text = DOC.read_text(encoding="utf-8")
    assert schema.GENERATED_MARKER in text, "docs/data-model.md lost its marker"
    generated = text.split(schema.GENERATED_MARKER, 1)[1].strip()
    assert generated == schema.data_model_markdown().strip(), "run: python -m crm_core.schema"


@pytest.mark.parametrize(
    ("header", "expected"),
    [("Customer ID", "customer_id"), ("CustomerID", "customer_id"), ("cust-id", "cust_id"),
     ("\ufeffInvoiceDate", "invoice_date"), ("  Unit Price (€) ", "unit_price"), ("x\"; DROP--", "x_drop")],
    ids=["spaced", "camel", "dash", "bom", "symbols", "hostile"],
)
def test_normalize_header(header, expected):
    assert schema.normalize_header(header) == expected


def test_every_table_is_well_formed():
    for t in [*schema.TABLES.values(), *schema.SOURCE_SHAPES.values()]:
        names = t.column_names
        assert len(names) == len(set(names)), t.name
        assert set(t.key) <= set(names), t.name
        assert all(c.type in schema.SQL_TYPES for c in t.columns), t.name
        # a synonym must not be another column's own name in the same table, or mapping would be ambiguous
        for c in t.columns:
            clash = {schema.normalize_header(s) for s in c.synonyms} & (set(names) - {c.name})
            assert not clash, f"{t.name}.{c.name} synonyms clash with columns {clash}"


def test_required_tables():
    assert [t.name for t in schema.TABLES.values() if not t.optional] == ["customers", "orders"]
    assert schema.get_table("orders").key == ("order_id",)
    with pytest.raises(ValueError, match="Unknown table 'clients'; choose one of: customers"):
        schema.get_table("clients")
