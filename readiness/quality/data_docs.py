"""Great Expectations Data Docs (static HTML) for quality-gate validation runs.

:func:`build_data_docs` adds one validation result to a Data Docs site and rebuilds the
site's index, so pages accumulate across runs. The HTML is GX's own: the result is rendered
by GX 1.x's ``SiteBuilder`` (``ValidationResultsPageRenderer`` + ``DefaultJinjaPageView`` for
the page, ``SiteIndexPageRenderer`` + ``DefaultJinjaIndexPageView`` for the index), driven the
documented way: a file-backed Data Context whose Data Docs site writes to ``site_dir``, the
result saved in the context's validation results store, then ``context.build_data_docs()``.

Layout of ``site_dir``::

    index.html                      validation runs, newest first (and the suites)
    validations/<suite>/<run name>/<run time>/<period or __none__>.html
    expectations/<suite>.html       the suite as validated by the latest run
    static/                         GX's CSS, JS, fonts and images
    gx/                             the GX project: great_expectations.yml, and the JSON
                                    results the pages are built from
                                    (gx/uncommitted/validations/...)

Results produced in an *ephemeral* context (as :func:`readiness.quality.gate.run_suite` does)
work: what is stored is a copy of the result, given the run identifier a GX Checkpoint
would have given it (``meta.run_id``, ``meta.validation_time``) and the suite name as its
data asset name (the gate's asset has a random per-run name).
"""
from __future__ import annotations

import copy
import datetime as dt
import logging
import os
import urllib.parse
from pathlib import Path
from typing import Any

import great_expectations as gx
from great_expectations.core.expectation_suite import ExpectationSuite
from great_expectations.core.expectation_validation_result import ExpectationSuiteValidationResult
from great_expectations.core.run_identifier import RunIdentifier
from great_expectations.data_context.data_context.file_data_context import FileDataContext
from great_expectations.data_context.types.resource_identifiers import (
    ExpectationSuiteIdentifier,
    ValidationResultIdentifier,
)

from readiness.ops.locks import file_lock
from readiness.quality.gate import GateResult

logger = logging.getLogger(__name__)

#: Name of the Data Docs site in the site's GX project (GX's default name).
SITE_NAME = "local_site"
#: The site is written to the GX project's parent, i.e. ``site_dir`` (relative, so the
#: whole directory can be moved or copied).
_SITE_CONFIG: dict[str, Any] = {
    "class_name": "SiteBuilder",
    "show_how_to_buttons": False,
    "store_backend": {"class_name": "TupleFilesystemStoreBackend", "base_directory": "../"},
    "site_index_builder": {"class_name": "DefaultSiteIndexBuilder"},
}
#: The GX project (config and stored JSON results) lives in ``site_dir / PROJECT_DIR``.
PROJECT_DIR = "gx"
#: Separator of suite name, period id and run id in GX's run name.
RUN_NAME_SEPARATOR = "__"
#: Failing rows kept per expectation in the stored copy of a result. A COMPLETE result lists
#: every failing row, and the index build reads every stored result; beyond this GX's page
#: says "Sampled Unexpected Values". ``unexpected_count`` and percentages are never changed.
MAX_UNEXPECTED_ROWS = 500
_TRIMMED_KEYS = ("unexpected_list", "unexpected_index_list")
_LOCK_FILE = ".data_docs.lock"


def index_path(site_dir: Path) -> Path:
    """The site's index page: every validation run, newest first."""
    return Path(site_dir) / "index.html"


def run_identifier(suite_name: str, run_name: str, period_id: str | None = None) -> str:
    """GX run name of a run: ``<suite>__<period>__<run>`` (``<suite>__<run>`` without a period)."""
    parts = [suite_name, period_id, run_name] if period_id is not None else [suite_name, run_name]
    return RUN_NAME_SEPARATOR.join(parts)


def build_data_docs(
    result: GateResult | ExpectationSuiteValidationResult,
    site_dir: Path,
    run_name: str,
    period_id: str | None = None,
) -> Path:
    """Add ``result`` to the Data Docs site in ``site_dir`` and rebuild the site's index.

    The page's GX run name is ``<suite>__<period_id>__<run_name>``, its run time the time
    the batch was validated. Building the same suite, period and ``run_name`` again replaces
    that run's page (and its stored result), even if the result is a new one. Returns the
    path of the page written for this run.

    Raises ``ValueError`` for a result without a GX validation result or an unusable name,
    and ``RuntimeError`` if GX did not write the page (GX logs rendering errors instead of
    raising them).
    """
    validation = result.validation if isinstance(result, GateResult) else result
    if not isinstance(validation, ExpectationSuiteValidationResult):
        raise ValueError(f"no GX ExpectationSuiteValidationResult to document (got {type(validation).__name__})")
    suite_name = validation.suite_name
    for what, value in (("suite name", suite_name), ("run_name", run_name), ("period_id", period_id)):
        if value is not None:
            _check_name(what, value)
    gx_run_name = run_identifier(suite_name, run_name, period_id)
    if "profiling" in gx_run_name:
        # GX's default site puts runs whose name contains "profiling" in its profiling
        # section, and leaves them out of the validations list.
        raise ValueError(f"run name {gx_run_name!r} must not contain 'profiling': GX Data Docs would not list it")

    site_dir = Path(site_dir).resolve()
    site_dir.mkdir(parents=True, exist_ok=True)
    run_id = RunIdentifier(run_name=gx_run_name, run_time=_validation_time(validation))
    docs_copy = _docs_copy(validation, run_id)
    key = ValidationResultIdentifier(
        expectation_suite_identifier=ExpectationSuiteIdentifier(name=suite_name),
        run_id=run_id,
        batch_identifier=period_id,
    )

    with file_lock(site_dir / _LOCK_FILE):  # one build at a time per site (stores, index, config are rewritten)
        context = _site_context(site_dir)
        store = context.validation_results_store
        for old in store.list_keys():
            if (
                old.expectation_suite_identifier.name == suite_name
                and old.run_id.run_name == gx_run_name
                and old != key
            ):
                # the index build then drops the old page (GX removes pages without a result)
                store.remove_key(old)
        store.set(key, docs_copy)
        suite_key = _save_suite(context, docs_copy)
        context.build_data_docs(site_names=[SITE_NAME], resource_identifiers=[key, suite_key])
        urls = context.get_docs_sites_urls(resource_identifier=key, site_name=SITE_NAME, only_if_exists=False)

    page = _path_from_url(urls[0]["site_url"])
    if not page.is_file():
        raise RuntimeError(f"GX did not write the Data Docs page {page} (see the GX log for a rendering error)")
    if not index_path(site_dir).is_file():
        raise RuntimeError(f"GX did not write the Data Docs index {index_path(site_dir)}")
    logger.info("Data Docs for run %s: %s", gx_run_name, page)
    return page


# --------------------------------------------------------------------------- helpers


def _check_name(what: str, value: str) -> None:
    """Names become directory names in the stores and the site."""
    if not isinstance(value, str) or not value.strip():
        raise ValueError(f"{what} must be a non-empty string, got {value!r}")
    if value in (".", "..") or any(c in value for c in ("/", "\\", "\0")):
        raise ValueError(f"{what} {value!r} cannot be a path component")


def _validation_time(validation: ExpectationSuiteValidationResult) -> dt.datetime:
    """When the batch was validated: ``meta.validation_time`` (set by a ValidationDefinition or
    Checkpoint run), else the batch's load time (``batch.validate`` sets only that), else now."""
    meta = validation.meta or {}
    candidates: list[Any] = [meta.get("validation_time"), (meta.get("batch_markers") or {}).get("ge_load_time")]
    for value in candidates:
        if isinstance(value, dt.datetime):
            return value if value.tzinfo else value.replace(tzinfo=dt.timezone.utc)
        if isinstance(value, str):
            for fmt in ("%Y%m%dT%H%M%S.%fZ", "%Y-%m-%dT%H:%M:%S.%fZ"):
                try:
                    return dt.datetime.strptime(value, fmt).replace(tzinfo=dt.timezone.utc)
                except ValueError:
                    pass
            try:
                parsed = dt.datetime.fromisoformat(value)
            except ValueError:
                continue
            return parsed if parsed.tzinfo else parsed.replace(tzinfo=dt.timezone.utc)
    return dt.datetime.now(dt.timezone.utc)


def _docs_copy(validation: ExpectationSuiteValidationResult, run_id: RunIdentifier) -> ExpectationSuiteValidationResult:
    """A copy of ``validation`` as a Checkpoint would have stored it, failing rows capped."""
    docs = copy.deepcopy(validation)
    docs.meta = dict(docs.meta or {})
    docs.meta["run_id"] = run_id
    docs.meta["validation_time"] = run_id.run_time
    # GX shows batch_spec.data_asset_name as the page's "Data asset" and the index's asset name
    docs.meta["batch_spec"] = {**(docs.meta.get("batch_spec") or {}), "data_asset_name": validation.suite_name}
    for res in docs.results:
        body = res.result or {}
        for name in _TRIMMED_KEYS:
            rows = body.get(name)
            if isinstance(rows, list) and len(rows) > MAX_UNEXPECTED_ROWS:
                body[name] = rows[:MAX_UNEXPECTED_ROWS]
    return docs


def _save_suite(context: FileDataContext, validation: ExpectationSuiteValidationResult) -> ExpectationSuiteIdentifier:
    """Store the suite as validated (rebuilt from the result's expectation configurations), so
    the index's and the page's links to the suite's page resolve."""
    expectations = []
    for res in validation.results:
        cfg = res.expectation_config.to_json_dict()
        cfg["kwargs"] = {k: v for k, v in cfg["kwargs"].items() if k not in ("batch_id", "result_format")}
        cfg.pop("id", None)
        expectations.append(cfg)
    suite = ExpectationSuite(name=validation.suite_name, expectations=expectations)
    if any(s.name == suite.name for s in context.suites.all()):
        context.suites.delete(suite.name)
    context.suites.add(suite)
    return ExpectationSuiteIdentifier(name=suite.name)


def _site_context(site_dir: Path) -> FileDataContext:
    """The site's file-backed GX project, with its one Data Docs site writing to ``site_dir``."""
    context = gx.get_context(mode="file", project_root_dir=site_dir)
    if not isinstance(context, FileDataContext):  # pragma: no cover - GX_CLOUD_* set in the environment
        raise RuntimeError(f"expected a file-backed GX context in {site_dir}, got {type(context).__name__}")
    sites = context.list_data_docs_sites()
    if set(sites) != {SITE_NAME} or sites[SITE_NAME] != _SITE_CONFIG:
        for name in list(sites):
            context.delete_data_docs_site(name)
        context.add_data_docs_site(SITE_NAME, copy.deepcopy(_SITE_CONFIG))
    if context.config.analytics_enabled is not False:
        context.enable_analytics(False)
    return context


def _path_from_url(url: str) -> Path:
    parsed = urllib.parse.urlparse(url)
    if parsed.scheme != "file":
        raise RuntimeError(f"unexpected Data Docs URL {url!r}")
    return Path(os.path.normpath(urllib.parse.unquote(parsed.path)))
