"""Research jobs (``/v1/jobs``): the latest job's status, its log's last lines, its report."""

from __future__ import annotations

import html
from typing import Any

from ui.views.fmt import when

Json = dict[str, Any]
SUMMARY_KEYS = 8


def _scalars(summary: Json) -> list[str]:
    out = []
    for k, v in summary.items():
        if isinstance(v, str | int | float | bool) and len(out) < SUMMARY_KEYS:
            out.append(f"`{html.escape(str(k))}` {html.escape(str(v))}")
    return out


def job_markdown(job: Json | None, kinds: list[str] | None = None) -> str:
    """One job as Markdown; without one, what can be started."""
    if job is None:
        can = ", ".join(kinds or []) or "none"
        return f"No research job started from this worker yet (kinds: {can})."
    status = str(job.get("status"))
    lines = [
        f"**Job `{job.get('id')}`** ({job.get('kind')}, {job.get('runner')}): **{status}**"
        + (f" ({html.escape(str(job['message']))})" if job.get("message") else ""),
        f"submitted {when(job.get('submitted_at'))} · `{html.escape(str(job.get('entrypoint')))}`",
    ]
    if job.get("report"):
        lines.append(f"report: `{html.escape(str(job['report']))}`")
    if job.get("summary"):
        lines.append("result: " + " · ".join(_scalars(job["summary"])))
    tail = job.get("log_tail") or []
    if tail:
        body = "\n".join(str(x) for x in tail[-12:]).replace("```", "'''")
        lines.append(f"```\n{body}\n```")
    return "\n\n".join(lines)
