"""crm_core: the brain of the CRM analytics dashboard (pure Python, never imports Streamlit).

One module per concern: ``schema`` (canonical data model), ``store`` (the DuckDB file), ``ingest`` (CSV/Parquet/
xlsx import), ``quality`` (duplicates, completeness), ``sample`` (generator with planted truth), ``metrics``
(Ibis expressions for the dashboards) and ``cli`` (``python -m crm_core``).
"""

__version__ = "0.1.0"
