"""The app frame: page config, navigation, global filters carried in the URL, the database connection.

Every page runs through :func:`run_app`, whether the visit starts at ``app.py`` or at a page's own URL: each file in
``pages/`` ends with ``if __name__ == "__main__": run_app()``. On a fresh server Streamlit runs a page opened by
URL as a standalone script (its file-based ``pages/`` mode); that script then builds the same navigation and runs
the page function, so filters, connection and menu are always there.

Filters live in ``st.session_state`` and are mirrored into the query string (``?start=2026-06-01&end=2026-06-30
&region=North&segment=Champions``), so a copied link reproduces the view. Query parameters are untrusted: bad
dates fall back to the defaults and unknown regions or segments are dropped.

Where the metrics run: the embedded DuckDB store (``CRM_DB``), or — with ``CRM_BACKEND=pyspark`` or a connection URL
in ``CRM_BACKEND_URL`` (:mod:`crm_core.engines`, docs/scale.md) — an engine that already holds the data, read through
the table mapping; nothing is copied. :func:`backend` is the metrics' backend either way. The embedded store stays
open on an engine too, for what only it keeps: goals, the audit log, the import log and templates (:func:`cursor`).
"""

from __future__ import annotations

import datetime as dt
import importlib
import os
import threading
import weakref
from dataclasses import dataclass

import duckdb
import streamlit as st

from crm_core import engines, ingest, store
from crm_core.segments import SEGMENT_DESCRIPTIONS, SEGMENTS
from ui import auth

# Query parameters a page reads itself (untrusted, validated there): kept when the filters rewrite the query string.
PAGE_PARAMS = ("customer",)

UPLOAD_LIMIT_MB = 200  # keep in step with server.maxUploadSize in .streamlit/config.toml


@dataclass(frozen=True)
class Filters:
    start: dt.date
    end: dt.date
    regions: tuple[str, ...]
    segments: tuple[str, ...] = ()

    @property
    def days(self) -> int:
        return (self.end - self.start).days + 1


# --------------------------------------------------------------------------------------------- data access
def engine_settings() -> engines.EngineSettings:
    """Where the metrics run, from the environment (``CRM_BACKEND``, ``CRM_BACKEND_URL`` ...: docs/scale.md); a bad
    value raises ValueError saying what to write (:func:`run_app` shows it)."""
    return engines.settings_from_env()


@st.cache_resource(show_spinner="Opening the database ...")
def _connection(path: str) -> duckdb.DuckDBPyConnection:
    con = store.connect(path)
    store.harden(con)  # reads only uploads (temp folder) and the sample data; memory limit; settings locked
    if engine_settings().is_embedded:  # on an engine the store keeps only goals and logs: no sample data in it
        ingest.load_sample_if_fresh(con)
    return con


_per_thread = threading.local()  # each script run's thread: its cursor and Ibis backend


def db_path() -> str:
    return str(store.db_path(None))


def cursor() -> duckdb.DuckDBPyConnection:
    """This script run's own DuckDB cursor over the shared connection (a cursor must not be shared by threads).

    One per thread, not per session: with fast reruns (Streamlit's default) a widget change starts a new run on a
    new thread while the interrupted run may still be inside a query, and two runs sharing a cursor read each
    other's results.
    """
    cursors = _per_thread.__dict__.setdefault("cursors", {})
    path = db_path()
    if path not in cursors:
        cursors[path] = _connection(path).cursor()
    return cursors[path]


def store_backend():
    """An Ibis backend over :func:`cursor` (same lifetime: one per script-run thread): the embedded store, for what
    the app keeps there whatever the engine (goals)."""
    backends = _per_thread.__dict__.setdefault("backends", {})
    path = db_path()
    if path not in backends:
        backends[path] = store.ibis_backend(cursor())
    return backends[path]


class _EnginePool:
    """The app's backends on an engine (:func:`crm_core.engines.connect`), shared by every session.

    Spark: one backend for all threads (a Spark session takes jobs from many threads; the mapped table look-ups are
    locked). Any other engine: Ibis' backend holds one connection and runs each query in a transaction block on it,
    and two threads' blocks interleave (psycopg: "transaction commit at the wrong nesting level"), so a script run
    borrows a backend of its own for its thread and gives it back when the thread ends: connections are reused
    across runs and sessions, as many open as runs at the same moment.
    """

    def __init__(self, settings: engines.EngineSettings) -> None:
        self.settings = settings
        self._lock = threading.Lock()
        self._opened: list = []
        self._idle: list = []
        self._closed = False
        first = engines.connect(settings)  # at once: a wrong URL or mapping is reported while connecting
        self._opened.append(first)
        try:
            for name in first.list_tables():  # every mapped table's columns checked once, not on some page later
                first.table(name)
        except ValueError:
            if settings.kind != "pyspark":  # a Spark session belongs to the process (see close)
                _disconnect(first)
            raise
        self.shared = first if settings.kind == "pyspark" else None
        if self.shared is None:
            self._idle.append(first)

    def borrow(self):
        if self.shared is not None:
            return self.shared
        with self._lock:
            if self._idle:
                return self._idle.pop()
        opened = engines.connect(self.settings)
        with self._lock:
            self._opened.append(opened)
        return opened

    def give_back(self, backend) -> None:
        with self._lock:
            if not self._closed:
                self._idle.append(backend)
                return
        _disconnect(backend)

    def close(self) -> None:
        """Close the connections not in use (those in use close when their run gives them back). A Spark session
        is left running: it belongs to the process, and may be a notebook's."""
        with self._lock:
            self._closed = True
            idle, self._idle = self._idle, []
        if self.shared is None:
            for backend in idle:
                _disconnect(backend)


def _disconnect(backend) -> None:
    try:
        backend.disconnect()
    except Exception:  # noqa: BLE001 - closing a connection the server already dropped
        pass


@st.cache_resource(show_spinner=False, on_release=_EnginePool.close)
def _engine_pool(key: str, _settings: engines.EngineSettings) -> _EnginePool:
    return _EnginePool(_settings)


def backend():
    """The metrics' Ibis backend: the engine's (:class:`_EnginePool`) when one is configured, else the embedded
    store's (:func:`store_backend`)."""
    settings = engine_settings()
    if settings.is_embedded:
        return store_backend()
    key = repr(settings)  # the whole settings (the URL with its password): only a cache key, never shown
    pool = _engine_pool(key, settings)
    borrowed = _per_thread.__dict__.setdefault("engines", {})
    if key not in borrowed or borrowed[key][0] is not pool:  # new thread, or the pool was released since
        backend = pool.borrow()
        borrowed[key] = (pool, backend)
        weakref.finalize(threading.current_thread(), pool.give_back, backend)
    return borrowed[key][1]


ENGINE_VERSION_FORMAT = "%Y-%m-%d %H"  # on an engine, cached results are kept for the rest of the hour


def data_version() -> str:
    """Part of every cache key, so cached results never go stale. On the embedded store it changes whenever an
    import commits. An engine's data changes without the app knowing, so there it is the engine and the current hour
    (UTC): results are read afresh from the engine once an hour."""
    settings = engine_settings()
    if not settings.is_embedded:
        return f"{settings.describe()}|{dt.datetime.now(dt.UTC):{ENGINE_VERSION_FORMAT}}"
    row = cursor().execute(
        "SELECT count(*), max(finished_at) FROM import_log WHERE outcome = 'committed'").fetchone()
    return f"{db_path()}|{row[0]}|{row[1]}"


@st.cache_data(ttl=3600, show_spinner=False)
def _data_bounds(version: str) -> tuple[dt.date | None, dt.date | None, tuple[str, ...]]:
    if not engine_settings().is_embedded:
        return engines.data_bounds(backend())
    con = cursor()
    first, last = con.execute("SELECT min(ordered_at)::DATE, max(ordered_at)::DATE FROM orders").fetchone()
    regions = tuple(r[0] for r in con.execute(
        "SELECT DISTINCT region FROM customers WHERE region IS NOT NULL ORDER BY 1").fetchall())
    return first, last, regions


# --------------------------------------------------------------------------------------------- filters
def _parse_date(text: str | None) -> dt.date | None:
    try:
        return dt.date.fromisoformat(text) if text else None
    except ValueError:
        return None


def filters() -> Filters:
    """Draw the global filters in the sidebar (initialised from the URL once per session) and mirror them back."""
    first, last, all_regions = _data_bounds(data_version())
    today = dt.date.today()
    last = last or today
    first = first or last - dt.timedelta(days=365)
    default_start = max(first, last - dt.timedelta(days=29))
    version = data_version()
    if "f_range" not in st.session_state:  # a new session: the URL's filters (a shared link), else the defaults
        qp = st.query_params
        start = _parse_date(qp.get("start")) or default_start
        end = _parse_date(qp.get("end")) or last
        if start > end:
            start, end = default_start, last
        st.session_state["f_range"] = (start, end)
        st.session_state["f_regions"] = [r for r in qp.get_all("region") if r in all_regions]
        st.session_state["f_segments"] = [s for s in qp.get_all("segment") if s in SEGMENTS]
    elif st.session_state.get("_f_version") != version:
        # An import committed (in this session or another): the session keeps its own filters — the URL cannot be
        # read again, a menu click has cleared it — except that a period left at the old data's default follows the
        # new data, and regions the data no longer has are dropped.
        if tuple(st.session_state["f_range"]) == st.session_state.get("_f_default"):
            st.session_state["f_range"] = (default_start, last)
        st.session_state["f_regions"] = [r for r in st.session_state["f_regions"] if r in all_regions]
    st.session_state["_f_version"] = version
    st.session_state["_f_default"] = (default_start, last)
    if "presentation" not in st.session_state:  # a link may switch masking on, never off
        st.session_state["presentation"] = st.query_params.get("present") == "1"
    always_masked = not auth.allowed("view_personal")
    if always_masked:  # a viewer: masked whatever the URL or the toggle says (masking() checks the role too)
        st.session_state["presentation"] = True
    with st.sidebar:
        st.markdown("**Filters**")
        picked = st.date_input(
            "Period", key="f_range", min_value=min(first, st.session_state["f_range"][0]),
            max_value=max(last, today, st.session_state["f_range"][-1]),
            help="KPIs compare this period with the period of the same length just before it.",
        )
        st.multiselect("Region", options=list(all_regions), key="f_regions",
                       help="Customers' region; orders and tickets follow their customer. Empty = all regions.",
                       placeholder="All regions")
        st.multiselect("Segment", options=list(SEGMENTS), key="f_segments", placeholder="All segments",
                       help="RFM segment of each customer as of the last day of the period (recency, frequency and "
                            "spend scored 1-5 by quantile). " + " ".join(f"{k}: {v}" for k, v in
                                                                          SEGMENT_DESCRIPTIONS.items()))
        st.toggle("Presentation mode", key="presentation", disabled=always_masked,
                  help=("Always on for your role: personal data is masked. " if always_masked else "")
                  + "Masks customers' names, e-mail addresses and phone numbers on every page, in every "
                       "download and in the board pack, for projecting in a room (Zoë Müller → Z••• M•••, "
                       "zoe@example.com → z•••@•••.com, phones keep their last two digits).")
    if isinstance(picked, tuple) and len(picked) == 2:
        start, end = picked
    else:  # the user is half-way through picking a range
        start = end = picked[0] if isinstance(picked, tuple) else picked
    f = Filters(start, end, tuple(st.session_state["f_regions"]), tuple(st.session_state["f_segments"]))
    kept = {k: st.query_params.get_all(k) for k in PAGE_PARAMS if k in st.query_params}  # a page's own, e.g. customer
    present = {"present": "1"} if masking() else {}
    st.query_params.from_dict({"start": f.start.isoformat(), "end": f.end.isoformat(), "region": list(f.regions),
                               "segment": list(f.segments), **present, **kept})
    return f


def user_name() -> str | None:
    """The signed-in user's e-mail when sign-in is configured and the user is signed in, else None."""
    return auth.actor()


def masking() -> bool:
    """True when personal data is masked everywhere (see :mod:`crm_core.privacy`): presentation mode is on, or the
    user's role may not see personal data (checked on the server every time)."""
    return not auth.allowed("view_personal") or bool(st.session_state.get("presentation", False))


# --------------------------------------------------------------------------------------------- frame
# (title, module in pages/ = url_path); the first is the root URL. A page module is imported only when its page runs,
# so opening the Overview does not load scikit-learn, scipy or the other pages' code.
PAGES = (
    ("Overview", "overview"),
    ("Customer 360", "customer"),
    ("Segments", "segments"),
    ("Customer value", "value"),
    ("Retention & churn", "retention"),
    ("Campaigns", "campaigns"),
    ("Cross-sell", "cross_sell"),
    ("Support", "support"),
    ("Fulfilment", "fulfilment"),
    ("Goals & investment", "goals"),
    ("Data", "data"),
)


def _lazy(module: str):
    """A page function that imports ``pages.<module>`` when it runs and calls its ``render``."""

    def render() -> None:
        importlib.import_module(f"pages.{module}").render()

    render.__name__ = module
    return render


def _pages():
    out = []
    for i, (title, module) in enumerate(PAGES):
        if i == 0:  # the root URL: /?start=...&end=...
            out.append(st.Page(_lazy(module), title=title, default=True))
        else:  # url_path = the file name (see the module docstring)
            out.append(st.Page(_lazy(module), title=title, url_path=module))
    return out


def _checked_settings() -> engines.EngineSettings:
    """The engine settings; a wrong one stops the run with what to write."""
    try:
        return engine_settings()
    except ValueError as exc:
        st.error(f"The engine settings are wrong: {exc}")
        st.stop()


def _connect_engine(settings: engines.EngineSettings) -> None:
    """On an engine, its backend opened (once per server, under a spinner); an engine that cannot be reached, or a
    mapping that does not fit it, stops the run with the message."""
    if not settings.is_embedded:
        try:
            with st.spinner(f"Connecting to {settings.describe()} ..."):
                backend()
        except (RuntimeError, ValueError) as exc:
            st.error(str(exc))
            st.stop()


def run_app() -> None:
    """Set up the page, the navigation and the filters, then run the page the URL asks for."""
    st.set_page_config(page_title="CRM analytics", layout="wide", initial_sidebar_state="expanded")
    settings = _checked_settings()
    who = auth.gate()  # with sign-in configured: stops here unless the user is signed in and has a role
    _connect_engine(settings)
    page = st.navigation(_pages(), position="sidebar")
    st.session_state["filters"] = filters()
    with st.sidebar:
        if settings.is_embedded:
            st.caption(f"Database: `{os.path.basename(db_path())}`")
        else:
            st.caption(f"Data: `{settings.describe()}` (read only). Goals and the audit log: "
                       f"`{os.path.basename(db_path())}`")
        auth.sidebar(who)
    page.run()


def current_filters() -> Filters:
    return st.session_state["filters"]
