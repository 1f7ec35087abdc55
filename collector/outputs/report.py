"""The run report: report.md and a self-contained report.html in the reference (FMBench) report's sections.

Every figure comes from the marts through collector.outputs.queries and is drawn by the app's own chart
definitions (collector.outputs.charts), rendered to PNG by vl-convert without a browser.
"""

from __future__ import annotations

import base64
import html
import io
import json
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pandas as pd
import yaml

from collector import __version__
from collector.errors import UserError
from collector.landing import MANIFEST_FILE
from collector.outputs import charts, figures, queries, sentences, tables

PNG_SCALE = 2


@dataclass(frozen=True)
class Colored:
    """A table cell shown in a colour (red and bold when it fails a budget), as the reference does."""

    text: str
    color: str
    bold: bool = False


class Markup(str):
    """Report-written Markdown (headings, sentences with escaped values): rendered, not escaped.

    Any other string is data (names, model ids, messages from the marts) and is escaped in both outputs.
    """


Cell = str | Colored


@dataclass
class Document:
    """Blocks rendered twice: to Markdown (PNG files beside it) and to HTML (PNGs as data URIs)."""

    blocks: list[tuple[str, Any]] = field(default_factory=list)
    images: dict[str, bytes] = field(default_factory=dict)
    interactive: charts.AnyChart | None = None  # written beside the report as a self-contained HTML chart

    def heading(self, level: int, text: str) -> None:
        self.blocks.append(("heading", (level, text)))

    def para(self, text: str) -> None:
        self.blocks.append(("para", text))

    def table(self, columns: list[str], rows: list[list[Cell]]) -> None:
        self.blocks.append(("table", (columns, rows)))

    def frame(self, shown: tables.Table, code_columns: tuple[str, ...] = ()) -> None:
        """A Table with its figures written by the precision rule, a passed budget's cell in green and a missed
        one in bold red (as the reference), `code_columns` as code spans, and its notes under it."""
        frame = tables.text(shown)
        rows: list[list[Cell]] = []
        for i in range(len(frame)):
            cells: list[Cell] = []
            for column in frame.columns:
                value, state = str(frame.iloc[i][column]), shown.states.iloc[i][column]
                if state in (tables.PASS, tables.FAIL):
                    cells.append(Colored(value, "green" if state == tables.PASS else "red", bold=state == tables.FAIL))
                else:
                    cells.append(md_code(value) if column in code_columns else value)
            rows.append(cells)
        self.table([str(c) for c in frame.columns], rows)
        for note in shown.notes:
            self.para(md_text(note))

    def image(self, alt_text: str, filename: str, chart: charts.AnyChart) -> None:
        """The chart as a PNG beside the report, or, for a chart with nothing to draw, the sentence saying why."""
        if (reason := charts.empty_reason(chart)) is not None:
            self.para(f"_{md_text(alt_text)}: {md_text(reason)}_")
            return
        import vl_convert

        self.images[filename] = vl_convert.vegalite_to_png(chart.to_json(), scale=PNG_SCALE)
        self.blocks.append(("image", (alt_text, filename)))

    def code(self, language: str, text: str) -> None:
        self.blocks.append(("code", (language, text)))

    # ---- Markdown -------------------------------------------------------------------------------------

    def markdown(self) -> str:
        out: list[str] = []
        for kind, value in self.blocks:
            if kind == "heading":
                level, text = value
                out.append(f"{'#' * level} {text}\n")
            elif kind == "para":
                out.append(f"{value}\n")
            elif kind == "table":
                columns, rows = value
                out.append("| " + " | ".join(_md_cell(Markup(c)) for c in columns) + " |")
                out.append("|" + "|".join("---" for _ in columns) + "|")
                out.extend("| " + " | ".join(_md_cell(c) for c in row) + " |" for row in rows)
                out.append("")
            elif kind == "image":
                alt_text, filename = value
                out.append(f"![{alt_text}]({filename})\n")
            elif kind == "code":
                language, text = value
                # A fence longer than any backtick run inside, so no value can close it early.
                fence = "`" * max(3, 1 + max((len(r) for r in re.findall(r"`+", text)), default=0))
                out.append(f"{fence}{language}\n{text.rstrip()}\n{fence}\n")
        return "\n".join(out)

    # ---- HTML -----------------------------------------------------------------------------------------

    def html(self, title: str) -> str:
        body: list[str] = []
        for kind, value in self.blocks:
            if kind == "heading":
                level, text = value
                body.append(f'<h{level} id="{_slug(text)}">{_inline(text)}</h{level}>')
            elif kind == "para":
                body.append(f"<p>{_inline(value)}</p>")
            elif kind == "table":
                columns, rows = value
                head = "".join(f"<th>{_inline(Markup(c))}</th>" for c in columns)
                trs = "".join("<tr>" + "".join(f"<td>{_html_cell(c)}</td>" for c in row) + "</tr>" for row in rows)
                body.append(f"<table><thead><tr>{head}</tr></thead><tbody>{trs}</tbody></table>")
            elif kind == "image":
                alt_text, filename = value
                encoded = base64.b64encode(self.images[filename]).decode("ascii")
                body.append(f'<p><img alt="{html.escape(alt_text)}" src="data:image/png;base64,{encoded}"></p>')
            elif kind == "code":
                _, text = value
                body.append(f"<pre><code>{html.escape(text.rstrip())}</code></pre>")
        return (
            '<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
            f"<title>{html.escape(title)}</title>\n<style>{_CSS}</style>\n</head>\n<body>\n"
            + "\n".join(body)
            + "\n</body>\n</html>\n"
        )


_CSS = (
    "body{font-family:system-ui,-apple-system,'Segoe UI',sans-serif;max-width:1100px;margin:2em auto;padding:0 1em;"
    "color:#1f2328;line-height:1.5}table{border-collapse:collapse;margin:1em 0;font-size:0.9em}"
    "th,td{border:1px solid #d0d7de;padding:4px 8px;text-align:left;vertical-align:top}th{background:#f6f8fa}"
    "code{background:#f6f8fa;padding:0 3px;border-radius:3px}pre{background:#f6f8fa;padding:1em;overflow:auto}"
    "img{max-width:100%}"
)


# Characters that could start a link, an image, raw HTML, a code span, emphasis or a table cell in Markdown.
# An underscore inside a word (transactions_per_minute) cannot start emphasis, so it stays readable.
_MD_ACTIVE = re.compile(r"([\\`\[\]<>|!*])|(?<![A-Za-z0-9])(_)|(_)(?![A-Za-z0-9])")


def md_text(value: object) -> Markup:
    """A data value as Markdown that shows it literally: no link, HTML or code span can start inside it."""
    text = re.sub(r"[\r\n\t]+", " ", str(value)).replace(_PH_OPEN, "").replace(_PH_CLOSE, "")
    return Markup(_MD_ACTIVE.sub(lambda m: "\\" + m.group(0), text))


def md_code(value: object) -> Markup:
    """A data value as an inline code span (literal in Markdown); one holding a backtick falls back to text."""
    text = re.sub(r"[\r\n\t]+", " ", str(value)).replace(_PH_OPEN, "").replace(_PH_CLOSE, "")
    if "`" in text or "|" in text or not text.strip():
        return md_text(text)
    return Markup(f"`{text}`")


def _md_cell(cell: Cell) -> str:
    if isinstance(cell, Colored):
        inner = f"**{md_text(cell.text)}**" if cell.bold else md_text(cell.text)
        return f"<span style='color:{cell.color}'>{inner}</span>"
    if isinstance(cell, Markup):
        return str(cell).replace("\n", " ")
    return md_text(cell)


def _html_cell(cell: Cell) -> str:
    if isinstance(cell, Colored):
        inner = f"<b>{html.escape(cell.text)}</b>" if cell.bold else html.escape(cell.text)
        return f'<span style="color:{cell.color}">{inner}</span>'
    if isinstance(cell, Markup):
        return _inline(cell)
    return html.escape(str(cell))


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")


# Placeholders (private-use characters, removed from data first) hold escaped characters and code spans
# while the inline rules run, so nothing inside them can turn into markup.
_PH_OPEN, _PH_CLOSE = "\ue000", "\ue001"
_PROTECTED = re.compile(r"\\([\\`\[\]<>|!*_#])|`([^`]+)`")
# Links go to an anchor of this report or a file beside it: never a scheme (javascript:, data:, http:).
_LINK = re.compile(r"\[([^\]]+)\]\((#[a-z0-9-]+|[A-Za-z0-9_-][A-Za-z0-9_.-]*\.(?:html|png|md))\)")


def _inline(text: str) -> str:
    """The little Markdown the report writes inline: `code`, **bold**, _italic_, [text](#anchor or file), \\x."""
    kept: list[str] = []

    def keep(match: re.Match[str]) -> str:
        escaped, code = match.groups()
        kept.append(html.escape(escaped) if escaped is not None else f"<code>{html.escape(code)}</code>")
        return f"{_PH_OPEN}{len(kept) - 1}{_PH_CLOSE}"

    out = str(text).replace(_PH_OPEN, "").replace(_PH_CLOSE, "")
    out = html.escape(_PROTECTED.sub(keep, out))
    out = re.sub(r"\*\*([^*]+)\*\*", r"<b>\1</b>", out)
    out = re.sub(r"(?<![\w])_([^_]+)_(?![\w])", r"<i>\1</i>", out)
    out = _LINK.sub(r'<a href="\2">\1</a>', out)
    return re.sub(f"{_PH_OPEN}(\\d+){_PH_CLOSE}", lambda m: kept[int(m.group(1))], out)


# ---- sections ------------------------------------------------------------------------------------------


def _codes(values: list[str]) -> str:
    return ", ".join(md_code(v) for v in values)


def _as_dict(value: Any) -> dict[str, Any] | None:
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError:
            return None
    return value if isinstance(value, dict) else None


def _run_config(run: pd.Series, results_dir: Path) -> tuple[dict[str, Any] | None, str]:
    """The resolved config: dim_runs.config_json, else the run's manifest (marts built before it had one)."""
    config = _as_dict(run.get("config_json"))
    if config is not None:
        return config, "marts.dim_runs.config_json"
    manifest = results_dir / "raw" / str(run["run_id"]) / MANIFEST_FILE
    try:
        config = _as_dict(json.loads(manifest.read_text()).get("config_json"))
    except (OSError, ValueError, AttributeError):
        config = None
    return config, str(manifest)


def _pick_run(warehouse: Path, run_id: str | None) -> pd.Series:
    runs = queries.runs(warehouse)
    if runs.empty:
        raise UserError(f"the warehouse {warehouse} has no run in its marts ({queries.RUN_HINT}, {queries.BUILD_HINT})")
    if run_id is None:
        return runs.iloc[0]
    match = runs[runs["run_id"] == run_id]
    if match.empty:
        known = ", ".join(runs["run_id"].astype(str).head(5))
        raise UserError(f"run {run_id} is not in {warehouse} (marts.dim_runs); newest runs: {known}")
    return match.iloc[0]


def build_document(warehouse: Path, run: pd.Series, results_dir: Path) -> Document:
    """Every section of the report for one run."""
    run_id = str(run["run_id"])
    levels = queries.level_metrics(warehouse, [run_id])
    recs = queries.recommendations(warehouse, [run_id])
    failed = queries.failed_experiments(warehouse, run_id)
    costs = queries.experiment_costs(warehouse, run_id)
    endpoint = queries.endpoint_metrics(warehouse, run_id)
    errors = queries.level_errors(warehouse, [run_id])
    unmeasured = queries.unmeasured_levels(warehouse, run_id)
    doi = levels[levels["is_dataset_of_interest"]]
    budgets = {k: float(run[k]) for k in ("latency_budget_s", "cost_per_10k_txn_budget_usd", "error_rate_budget")}
    doc = Document()

    models = sorted(levels["model_id"].dropna().astype(str).unique()) or [str(run["run_name"])]
    servings = sorted({sentences.serving(r) for _, r in levels.iterrows()})
    buckets = sorted(levels["payload_file"].astype(str).unique())
    doi_name = str(run["dataset_of_interest"])

    doc.heading(1, tables.title([md_text(m) for m in models], run))
    doc.table(
        ["**Last modified (UTC)**", "**tokenbench version**", "**Run**", "**Run status**"],
        [[str(datetime.now(UTC).replace(tzinfo=None)), __version__, md_code(run_id), str(run["status"])]],
    )

    # Summary
    doc.heading(2, "Summary")
    no_best, failed_line = sentences.verdict(run, recs, failed, unmeasured)
    intro = (
        f"We did performance benchmarking for {_codes(models)} on {_codes(servings)} with "
        f"{levels['experiment_name'].nunique()} experiment(s) on {len(buckets)} dataset(s) ({_codes(buckets)})."
    )
    if no_best is not None:
        doc.para(f"{intro} {md_text(no_best)}")
    else:
        row = recs[recs["is_best_price_performance"]].iloc[0]
        doc.para(f"{intro} {sentences.best_price_performance(row, md_code)}")
        doc.frame(tables.information_table(row))
    if unmeasured_note := sentences.unmeasured(run, unmeasured, md_code):
        doc.para(f"**Not measured.** {unmeasured_note}")
    if not doi.empty and doi["cost_per_10k_txn"].notna().any():
        chart = charts.price_performance(doi, budgets["latency_budget_s"], budgets["cost_per_10k_txn_budget_usd"])
        doc.para(
            f"The price performance comparison of every experiment and concurrency level for the {md_code(doi_name)} "
            "dataset is presented below (bubble size: transactions per minute; the box: the budgets). An "
            "interactive version of this chart is available [here](price_performance.html)."
        )
        doc.image("Price performance comparison", "business_summary.png", chart)
        doc.interactive = chart

    if unpriced := sentences.unpriced_note(levels, md_code):
        doc.para(unpriced)

    # Latency metrics analysis
    doc.heading(3, "Latency Metrics Analysis")
    doc.para(
        "The following table provides the overall latency, Time To First Token (TTFT) and Time Per Output Token "
        f"(TPOT) for the {md_code(doi_name)} dataset, per experiment and concurrency level, with the requests "
        "each level measured."
    )
    if doi.empty:
        doc.para(f"_No level of the {md_code(doi_name)} dataset was measured._")
    else:
        doc.frame(tables.latency_table(doi), code_columns=("Experiment",))
        if doi["ttft_p50"].isna().all() and doi["success_count"].gt(0).any():
            doc.para("_No TTFT or TPOT: they need streamed responses (`stream: true` on the experiment's endpoint)._")

    # Failed experiments
    doc.heading(3, "Failed experiments")
    doc.para(md_text(failed_line))
    if not failed.empty:
        doc.frame(tables.failed_table(failed), code_columns=("Experiment", "Payload bucket"))
    if not errors.empty:
        doc.heading(4, "Errors")
        doc.para("What the failed requests of each level failed with, the most frequent first, warm-up excluded.")
        for line in sentences.errors_by_level(levels, errors, md_code, md_text):
            doc.para(line)
        doc.frame(tables.errors_table(errors), code_columns=("Experiment", "Payload bucket"))

    # Endpoint metrics
    doc.heading(3, "Endpoint metrics")
    doc.para(
        "The following table provides endpoint utilization metrics per experiment and concurrency level: the "
        "telemetry samples inside each level's window (host CPU %, host memory GiB, and GPU utilisation %, "
        "memory GiB and power W where an NVIDIA driver was present)."
    )
    remote_note = sentences.remote_telemetry_note(endpoint, md_code)
    if remote_note:
        doc.para(remote_note)
    endpoint_rows = tables.endpoint_table(endpoint)
    if endpoint_rows.empty:
        doc.para("_No telemetry sample fell inside a concurrency window._")
    else:
        doc.frame(endpoint_rows)

    # The server's own view, where an endpoint exposed its engine's metrics
    server = queries.server_view(warehouse, run_id)
    if not server.empty:
        doc.heading(3, "Server's view")
        doc.para(md_text(sentences.server_view_intro(server)))
        for line in sentences.token_total_mismatches(server, md_code):
            doc.para(line)
        doc.frame(tables.server_view_table(server), code_columns=("Experiment", "Payload bucket"))

    # Configuration pointer
    doc.heading(3, "Configuration")
    doc.para("The configuration used for these tests is available in the [`config`](#configuration-file) file.")

    # Experiment cost
    doc.heading(3, "Experiment cost")
    doc.heading(4, "Model Benchmarking Cost")
    total = tables.total_cost(costs)
    doc.para(
        "The cost to run each experiment is provided in the table below (instance time from the first to the "
        f"last request, warm-up included; or the tokens billed). The total cost for running all experiments is "
        f"{figures.figure('cost_usd').text(total)}."
    )
    if unpriced:
        doc.para(unpriced)
    doc.frame(tables.cost_table(costs), code_columns=("Experiment",))

    # Per instance results
    doc.heading(2, "Per instance results")
    doc.para(
        "The following table provides the best combinations for running inference for different sizes prompts "
        "on different instance types (the highest concurrency meeting every budget, per experiment and dataset). "
        f"The following dataset(s) were used for this test: {_codes(buckets)}."
    )
    doc.frame(tables.recommendation_table(recs), code_columns=("Payload bucket", "Experiment", "Serving"))
    # The experiments side by side on each bucket of the dataset of interest (as the app's Compare page shows them):
    # an EC2 stack, a SageMaker endpoint and Bedrock, say, each with how it bills.
    doi_recs = recs[recs["is_dataset_of_interest"].fillna(False).astype(bool)]
    for bucket, side in doi_recs.groupby("payload_file", sort=True):
        if len(side) < 2:
            continue
        doc.heading(3, f"Side by side on {bucket}")
        doc.para(
            f"The recommended level of each experiment on the {md_code(bucket)} dataset (a dash where none met every "
            "budget), with its pricing model: instance-hour, token or provisioned. The ratio columns divide each "
            "experiment's figure by the first's."
        )
        doc.frame(tables.comparison_table(side.sort_values("experiment_name"), "experiment_name"))

    # Plots
    doc.heading(2, "Plots")
    doc.para("The following plots provide insights into the results from the different experiments run.")
    if not doi.empty:
        doc.image(
            "Error rates for different concurrency levels and experiments",
            "error_rates.png",
            charts.error_rate_by_concurrency(doi),
        )
    sample = queries.request_sample(warehouse, run_id, queries.RequestFilter())
    if not sample.empty:
        doc.image(
            "Tokens vs latency for different concurrency levels and experiments",
            "tokens_vs_latency.png",
            charts.tokens_vs_latency(sample),
        )
    if not doi.empty:
        doc.image(
            "Concurrency vs latency for different experiments for the selected dataset",
            "concurrency_vs_inference_latency.png",
            charts.latency_vs_concurrency(doi, budgets["latency_budget_s"]),
        )
        doc.image(
            "Concurrency vs transactions per minute and tokens per second for the selected dataset",
            "concurrency_vs_throughput.png",
            charts.throughput_vs_concurrency(doi),
        )
        if doi["target_rate_rps"].notna().any():
            doc.image(
                "Offered rate vs served rate and latency of the open-loop levels for the selected dataset",
                "rate_curve.png",
                charts.rate_curve(doi, budgets["latency_budget_s"]),
            )
            for line in sentences.open_loop_verdicts(doi):
                doc.para(line)
    bins = queries.request_histograms(
        warehouse, run_id, queries.RequestFilter(payload_files=tuple(doi["payload_file"].unique()))
    )
    if not bins.empty:
        doc.image(
            "Distributions of latency, TTFT and TPOT for the selected dataset",
            "latency_distributions.png",
            charts.distributions(bins),
        )
    try:
        samples = queries.telemetry_samples(warehouse, run_id)
    except queries.WarehouseUnavailable as exc:  # marts built before fct_telemetry_samples existed
        doc.para(f"No telemetry time series: {md_text(exc.reason)} {md_text(exc.hint)}")
        samples = pd.DataFrame()
    if not samples.empty:
        doc.para(
            "Host and GPU telemetry over the run, one point per sample, with each concurrency level's measured "
            "window shaded and labelled `c=N`."
            + ("" if charts.has_gpu_telemetry(samples) else f" {charts.NO_GPU_TELEMETRY}")
        )
        doc.image(
            "Host and GPU telemetry over time with the concurrency levels marked",
            "telemetry_over_time.png",
            charts.telemetry_over_time(samples, endpoint),
        )
    bands = queries.telemetry_bands(warehouse, run_id).dropna(subset=["p50"])
    if not bands.empty:
        doc.image("Host and GPU telemetry per concurrency window", "telemetry.png", charts.telemetry_bands(bands))

    # Configuration file
    doc.heading(2, "Configuration file")
    doc.para(
        f"Budgets applied (source: {md_text(run['budget_source'])}): {md_text(sentences.criteria(budgets))}; "
        f"dataset of interest {md_code(doi_name)}. Prices applied: {_prices_line(costs)}."
    )
    config, source = _run_config(run, results_dir)
    if config is None:
        doc.para(
            f"_The resolved configuration was found neither in marts.dim_runs.config_json nor in {md_text(source)}._"
        )
    else:
        doc.para(f"The resolved configuration of the run (from {md_code(source)}, secrets redacted):")
        doc.code("yaml", yaml.safe_dump(config, sort_keys=False, allow_unicode=True))
    return doc


def _prices_line(costs: pd.DataFrame) -> str:
    parts = []
    for _, row in costs.iterrows():
        if row["pricing_kind"] == "instance" and not pd.isna(row["usd_per_hour"]):
            price = f"${row['usd_per_hour']:g}/hour per instance"
        elif row["pricing_kind"] == "token" and not pd.isna(row["usd_per_1m_input_tokens"]):
            price = (
                f"${row['usd_per_1m_input_tokens']:g}/${row['usd_per_1m_output_tokens']:g} per 1M input/output tokens"
            )
        else:
            price = "no price"
        read_on = row.get("price_read_on")
        when = "" if read_on is None or pd.isna(read_on) else f", read on {pd.Timestamp(read_on).date()}"
        parts.append(f"{md_code(row['experiment_name'])} {price} ({md_text(row['price_source'])}{when})")
    return "; ".join(parts) or "none"


def write_report(
    warehouse: Path, run_id: str | None = None, out_dir: Path | None = None, *, results_dir: Path | None = None
) -> Path:
    """Write report.md, report.html (images inlined) and the PNGs for a run (default: the newest).

    `results_dir` (holding raw/<run_id>/run.json, the resolved config) defaults to the warehouse's folder;
    `out_dir` to <results_dir>/reports/<run_id>/. Returns the report.md path.
    """
    warehouse = Path(warehouse)
    run = _pick_run(warehouse, run_id)
    rid = str(run["run_id"])
    if queries.level_metrics(warehouse, [rid]).empty:
        raise UserError(
            f"run {rid} ({run['status']}) has no measured requests in {warehouse} (marts.fct_concurrency_metrics): "
            "nothing to report; pick another with --run"
        )
    results_dir = Path(results_dir) if results_dir is not None else warehouse.parent
    out = Path(out_dir) if out_dir is not None else results_dir / "reports" / rid
    doc = build_document(warehouse, run, results_dir)
    _mkdir(out)
    for filename, png in doc.images.items():
        _write(out / filename, png)
    if doc.interactive is not None:
        _write(out / "price_performance.html", _chart_html(doc.interactive))
    md_path = out / "report.md"
    _write(md_path, doc.markdown().encode("utf-8"))
    title = f"tokenbench report {rid}"
    _write(out / "report.html", doc.html(title).encode("utf-8"))
    return md_path


def _mkdir(path: Path) -> None:
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise OSError(exc.errno, exc.strerror, str(exc.filename or path)) from exc


def _write(path: Path, content: bytes) -> None:
    """Write a file; an error (full or read-only disk) names the file, as a bare write() error would not."""
    try:
        path.write_bytes(content)
    except OSError as exc:
        raise OSError(exc.errno, exc.strerror, str(path)) from exc


def _chart_html(chart: charts.AnyChart) -> bytes:
    """The interactive chart as one self-contained page, with '<' in the embedded spec escaped as \\u003c.

    Altair writes the spec as raw JSON inside <script>; a model id holding `</script>` would end it there.
    """
    buffer = io.StringIO()
    chart.save(buffer, format="html", inline=True)
    page = buffer.getvalue()
    spec = json.dumps(chart.to_dict())
    if spec in page:  # the JSON as Altair embedded it: swap in a copy that cannot close the script
        page = page.replace(spec, spec.replace("<", "\\u003c").replace(">", "\\u003e"))
    return page.encode("utf-8")
