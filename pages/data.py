"""Data: import exports (upload → mapping → validation report → commit), data quality, duplicates, history, reset,
and the audit log. Import needs the analyst role, reset and the audit log the admin role (ui/auth.py): the role is
checked on the server when the page is drawn and again when a button acts, so no URL reaches them.

When the metrics run on another engine (docs/scale.md) the page says why imports, the reset and the quality checks
are off there, and keeps only the audit log."""

from __future__ import annotations

import re
import shutil
import tempfile
from pathlib import Path

import pandas as pd
import streamlit as st

from crm_core import audit, engines, ingest, quality
from crm_core.sample import SAMPLE_DIR
from crm_core.schema import SOURCE_SHAPES, TABLES
from crm_core.sources import ImportRefused
from ui import auth, frame, tables

NOT_MAPPED = "— not imported —"
AUDIT_ROWS = 5000  # the audit log's newest events shown (and downloaded) on the page
AUDIT_LABELS = {"occurred_at": "When (UTC)", "actor": "Who", "action": "Action", "target": "On", "outcome": "Outcome",
                "detail": "Detail", "event_id": "Event id"}
TARGETS = {**{t.name: t for t in TABLES.values()}, **{t.name: t for t in SOURCE_SHAPES.values()}}


def _target_label(name: str) -> str:
    t = TARGETS[name]
    return f"{name} — {t.grain}"


UPLOAD_PREFIX = "crm_upload_"
STALE_UPLOAD_SECONDS = 24 * 3600  # an upload a closed browser abandoned; an open session's is younger


def _spool(uploaded) -> Path:
    """Copy the upload to a private temp file in chunks (the import streams from disk; removed after use, and
    uploads abandoned by a closed browser for a day are swept the next time someone uploads)."""
    ingest.sweep_stale_temp_files(STALE_UPLOAD_SECONDS, prefix=UPLOAD_PREFIX)
    suffix = "".join(Path(uploaded.name).suffixes[-2:]) or ".csv"
    tmp = tempfile.NamedTemporaryFile(prefix=UPLOAD_PREFIX, suffix=suffix, delete=False)
    with tmp:
        uploaded.seek(0)
        shutil.copyfileobj(uploaded, tmp, 16 * 1024 * 1024)
    return Path(tmp.name)


def _forget_upload() -> None:
    old = st.session_state.pop("upload", None)
    if old:
        Path(old["path"]).unlink(missing_ok=True)
    st.session_state.pop("validated", None)


def _plain(text: str) -> str:
    """``text`` (a file name: the user's) shown as typed inside markdown, not as markup."""
    return re.sub(r"([\\`*_{}\[\]()#+\-.!|<>~])", r"\\\1", text)


def _show_report(report: ingest.ImportReport) -> None:
    box = {"committed": st.success, "unchanged": st.info, "validated": st.info, "busy": st.warning}.get(
        report.outcome, st.error)
    box(report.message)
    if report.rows_read:
        c = st.columns(4)
        c[0].metric("Rows read", f"{report.rows_read:,}", help="Data rows in the file (header not counted).")
        c[1].metric("Accepted", f"{report.rows_accepted:,}", help="Rows that will be (or were) stored.")
        c[2].metric("Rejected", f"{report.rows_rejected:,}", help="Rows not stored, each with line and reason.")
        c[3].metric("Duplicates dropped", f"{report.exact_duplicates + report.duplicate_keys:,}",
                    help="Exact duplicate rows, plus rows repeating a key (the last occurrence is kept).")
    if report.rejected_by_reason:
        st.markdown("**Rejected rows by reason**")
        st.dataframe(pd.DataFrame(list(report.rejected_by_reason.items()), columns=["reason", "rows"]),
                     hide_index=True)
        rejected = report.rejected_frame()
        st.dataframe(tables.visible(rejected.head(200)), hide_index=True)
        tables.download("Download rejected rows (CSV)", rejected, f"rejected_{report.file_name}.csv",
                        key=f"dl_rej_{report.outcome}")
    if report.duplicate_keys:
        st.caption(f"{report.duplicate_keys:,} rows repeated a key; the last was kept (e.g. "
                   f"{', '.join(report.duplicate_key_examples)}).")
    if report.facts:
        st.markdown("**What the file contains**")
        facts = [(k, f"{v:,.2f}" if isinstance(v, float) else f"{v:,}" if isinstance(v, int) else str(v))
                 for k, v in report.facts.items()]
        st.dataframe(pd.DataFrame(facts, columns=["fact", "value"]), hide_index=True)
    if report.changes:
        st.markdown("**Effect on the tables**")
        st.dataframe(pd.DataFrame.from_dict(report.changes, orient="index").rename_axis("table").reset_index(),
                     hide_index=True)
    if report.unmapped_columns:
        st.caption("Columns not imported: " + ", ".join(report.unmapped_columns))
    for w in report.warnings:
        st.warning(w)
    if report.detected:
        st.caption("Detected: " + "; ".join(f"{k} = {v}" for k, v in report.detected.items()))


def _import_section() -> None:
    con = frame.cursor()
    st.subheader("Import an export")
    st.caption("CSV, .csv.gz, Parquet or Excel (.xlsx), up to "
               f"{frame.UPLOAD_LIMIT_MB} MB. Nothing is stored until you commit; a table changes completely or not "
               "at all.")
    c1, c2 = st.columns([2, 1])
    table = c1.selectbox("Import into", list(TARGETS), format_func=_target_label, key="imp_table",
                         help="A canonical table, or a source shape that expands into several tables.")
    mode = c2.radio("Mode", ingest.MODES, horizontal=True, key="imp_mode",
                    help="replace: the table becomes the file's rows. append: add rows with new keys. "
                         "upsert: update the mapped columns of existing keys and add new ones.")
    uploaded = st.file_uploader("File", type=["csv", "gz", "parquet", "xlsx", "txt", "tsv"],
                                key=f"imp_file_{st.session_state.get('imp_round', 0)}")
    if uploaded is None:
        _forget_upload()
        return
    current = st.session_state.get("upload")
    if current is None or current["file_id"] != uploaded.file_id:
        _forget_upload()
        st.session_state["upload"] = {"file_id": uploaded.file_id, "name": uploaded.name, "path": str(_spool(uploaded))}
    up = st.session_state["upload"]
    try:
        templates = ingest.list_templates(con)
        names = [t for t, tbl in zip(templates.template_name, templates.table_name) if tbl == table]
        chosen_template = None
        if names:
            pick = st.selectbox("Mapping template", ["(propose from the headers)", *names], key="imp_template",
                                help="A saved mapping. A file whose headers equal a template's uses it by itself.")
            chosen_template = pick if pick in names else None
        pv = ingest.preview(con, up["path"], table, display_name=up["name"], template=chosen_template,
                            max_bytes=frame.UPLOAD_LIMIT_MB * 1024 * 1024)
    except ImportRefused as exc:
        st.error(str(exc))
        return
    st.markdown(f"**{_plain(pv.file_name)}**: {len(pv.headers)} columns. " + "; ".join(
        f"{k} {v}" for k, v in pv.detected.items() if k in ("encoding", "delimiter", "sheet", "template")))
    with st.expander("First rows of the file", expanded=False):
        st.dataframe(tables.visible(pv.sample.astype(str)), hide_index=True)

    st.markdown("**Column mapping** — proposed from the headers; change any row. Required columns are marked *.")
    target = TARGETS[table]
    options = [NOT_MAPPED, *pv.headers]
    overrides: dict[str, str] = {}
    chosen: dict[str, str] = {}
    cols = st.columns(3)
    for i, col in enumerate(target.columns):
        proposed = pv.mapping.get(col.name, NOT_MAPPED)
        pick = cols[i % 3].selectbox(
            f"{col.name}{' *' if col.required else ''}", options, index=options.index(proposed),
            key=f"map::{table}::{up['file_id']}::{pv.template}::{col.name}", help=f"{col.description} ({col.type})")
        if pick != NOT_MAPPED:
            chosen[col.name] = pick
    for h in pv.headers:  # express the choice as source → target overrides (unchosen headers unmapped)
        targets = [c for c, src in chosen.items() if src == h]
        overrides[h] = targets[0] if targets else ""
    constants: dict[str, str] = {}
    unmapped = [c.name for c in target.columns if c.name not in chosen]
    lacking = [c for c in target.required_columns if c not in chosen]
    with st.expander("Same value on every row", expanded=bool(lacking)):
        st.caption("For a column the file does not have — e.g. the campaign of a campaign export: campaign_id = "
                   "SPRING24. The value is checked like any cell of that column.")
        k1, k2 = st.columns(2)
        choices = ["—", *unmapped]
        fixed = k1.selectbox("Column", choices, index=choices.index(lacking[0]) if lacking else 0,
                             key=f"imp_const_col::{table}::{up['file_id']}")
        fixed_value = k2.text_input("Value", key=f"imp_const_val::{table}::{up['file_id']}")
        if fixed != "—" and fixed_value.strip():
            constants[fixed] = fixed_value.strip()
    missing = [c for c in target.required_columns if c not in chosen and c not in constants]
    c1, c2 = st.columns(2)
    date_format = c1.selectbox("Date format", ["detect", *ingest.DATE_FORMATS], key="imp_datefmt",
                               help="Leave on detect: a format is chosen only when the values settle day/month.")
    template_name = c2.text_input("Save this mapping as template (optional)", key="imp_tpl",
                                  help="Files with the same headers will then use it automatically.")
    kwargs = dict(mode=mode, mapping=overrides, date_format=None if date_format == "detect" else date_format,
                  display_name=up["name"], max_bytes=frame.UPLOAD_LIMIT_MB * 1024 * 1024, constants=constants or None)
    if missing:
        st.warning("Map the required column(s) first, or give them one value for every row: " + ", ".join(missing))
        return
    if st.button("Validate", type="secondary", key="imp_validate"):
        with st.spinner("Validating ..."):
            st.session_state["validated"] = ingest.import_file(con, up["path"], table, dry_run=True, **kwargs)
    report = st.session_state.get("validated")
    if report is None:
        return
    st.markdown(f"#### Validation report: {_plain(report.file_name)}")
    _show_report(report)
    if report.outcome != "validated":
        return
    if st.button("Commit import", type="primary", key="imp_commit") and auth.require("import", "import",
                                                                                     target=f"{up['name']} → {table}"):
        bar = st.progress(0.0, text="Starting ...")
        final = ingest.import_file(con, up["path"], table, save_as_template=template_name or None,
                                   progress=lambda f, m: bar.progress(min(max(f, 0.0), 1.0), text=m), **kwargs)
        bar.empty()
        auth.record("import", target=f"{up['name']} → {table} ({mode})", outcome="ok" if final.ok else "failed",
                    detail=final.message)
        if final.outcome == "busy":  # keep the file and its validation: the same click works once the other ends
            st.warning(final.message)
            return
        _forget_upload()
        st.session_state["imp_round"] = st.session_state.get("imp_round", 0) + 1  # a new, empty file uploader
        st.session_state["last_import"] = final
        st.rerun()


@st.cache_data(ttl=3600, show_spinner="Checking data quality ...", show_time=True)
def _quality(version: str):
    """The quality checks, run again only when an import commits (not on every click in the import form)."""
    con = frame.cursor()
    pairs = quality.duplicate_customers(con)
    comp = quality.completeness(con)
    return (quality.duplicate_summary(con, pairs=pairs), pairs, comp, quality.missing_for_views(con, comp),
            quality.unused_columns(con, comp))


def _quality_section() -> None:
    st.subheader("Data quality")
    summary, pairs, comp, missing, unused = _quality(frame.data_version())
    st.markdown(f"**Duplicate customers.** {summary.reading}")
    if len(pairs):
        st.dataframe(tables.visible(pairs.head(500)), hide_index=True)
        tables.download("Download duplicate pairs (CSV)", pairs, "duplicate_customers.csv")
    st.markdown("**Completeness** — share of filled values per column; blank text counts as missing.")
    st.dataframe(comp, hide_index=True, column_config={
        "completeness_pct": st.column_config.ProgressColumn("complete", min_value=0, max_value=100, format="%.1f%%")})
    tables.download("Download completeness (CSV)", comp, "completeness.csv")
    if len(missing):
        st.markdown("**Empty columns that views need** — upload them to complete those views.")
        st.dataframe(missing, hide_index=True)
    if len(unused):
        st.markdown("**Columns with data that no view uses yet**")
        st.dataframe(unused, hide_index=True)


def _history_section() -> None:
    con = frame.cursor()
    st.subheader("Import history")
    hist = ingest.import_history(con)
    st.dataframe(hist, hide_index=True)
    tables.download("Download import history (CSV)", hist, "import_history.csv")
    if not auth.allowed("reset"):
        return
    with st.expander("Reset to the sample data"):
        st.caption("Replaces every table with the bundled sample data (about 5,000 customers). Imports are kept "
                   "in the history.")
        if st.button("Reset to sample data", key="reset") and auth.require("reset", "reset", target="all tables"):
            with st.spinner("Loading the sample data ..."):
                reports = ingest.load_folder(con, SAMPLE_DIR)
            bad = [r for r in reports if not r.ok]
            auth.record("reset", target="all tables", outcome="failed" if bad else "ok",
                        detail="; ".join(r.message for r in bad) or f"{len(reports)} files of the sample data loaded")
            if bad:
                st.error("; ".join(r.message for r in bad))
            else:
                st.session_state["last_import"] = None
                st.session_state["data_notice"] = "Sample data loaded."  # shown after the rerun
                st.rerun()


def _history_and_audit() -> None:
    _history_section()
    if auth.allowed("view_audit"):
        with st.expander("Audit log"):
            _audit_section()


def _audit_section() -> None:
    """Admins only (the caller checks): the audit log with a filter by action and a download."""
    st.caption("Who did what to the data, newest first: sign-ins, imports, exports, resets, goal changes, notes, "
               "board packs and refused actions. The app only ever adds to it.")
    action = st.selectbox("Action", ["(all)", *audit.ACTIONS], key="audit_action")
    log = audit.entries(frame.cursor(), action=None if action == "(all)" else action, limit=AUDIT_ROWS)
    if log.empty:
        st.caption("Nothing logged yet.")
        return
    st.caption(f"The latest {AUDIT_ROWS:,} events." if len(log) == AUDIT_ROWS else f"{len(log):,} events.")
    tables.show(log, AUDIT_LABELS)
    tables.download("Download the audit log (CSV)", log, "audit_log.csv", key="audit_csv")


QUALITY_ON_ENGINE = ("Data quality checks (duplicate customers, completeness, the columns each view needs) are "
                     "DuckDB SQL over the embedded store: they run on what is imported into it. On another engine, "
                     "check the data where it is loaded.")


def _engine_render(unavailable: str) -> None:
    """The Data page when the metrics run on another engine: nothing to import, reset or check here; the audit log
    (kept in the embedded store) stays."""
    st.info(unavailable)
    st.caption(QUALITY_ON_ENGINE)
    if auth.allowed("view_audit"):
        st.subheader("Audit log")
        _audit_section()
    else:
        st.caption(f"Not available to your role: the audit log ({auth.NEEDS['view_audit']}).")


def render() -> None:
    st.title("Data")
    unavailable = engines.writes_unavailable(frame.engine_settings())
    if unavailable:
        _engine_render(unavailable)
        return
    notice = st.session_state.pop("data_notice", None)
    if notice:
        st.success(notice)
    last = st.session_state.get("last_import")
    if last is not None:
        st.markdown(f"#### Last import: {_plain(last.file_name)} → {last.table}")
        _show_report(last)
    sections = {"Import": _import_section, "Quality and duplicates": _quality_section, "History": _history_and_audit}
    shown = {title: draw for title, draw in sections.items() if title != "Import" or auth.allowed("import")}
    hidden = [f"{what} ({auth.NEEDS[action]})" for what, action in
              (("importing", "import"), ("resetting the data", "reset"), ("the audit log", "view_audit"))
              if not auth.allowed(action)]
    if hidden:
        st.caption("Not available to your role: " + "; ".join(hidden) + ".")
    for tab, draw in zip(st.tabs(list(shown)), shown.values()):
        with tab:
            draw()


if __name__ == "__main__":  # opened by its own URL on a fresh server: run the whole app frame
    frame.run_app()
