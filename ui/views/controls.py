"""Controls: the confirmation prompt for each command and the API's answer to it."""

from __future__ import annotations

import html
from dataclasses import dataclass
from typing import Any

from ui.views.fmt import when

Json = dict[str, Any]


@dataclass(frozen=True, slots=True)
class Command:
    """A command the operator asked for and has not confirmed yet."""

    action: str  # halt | resume | reducing_on | reducing_off | promote | feed_* | job_start
    arg: str = ""

    def __post_init__(self) -> None:
        if self.action not in PROMPTS:
            raise ValueError(f"Command.action={self.action!r}: expected one of {sorted(PROMPTS)}")
        if self.action in NEEDS and not self.arg.strip():
            raise ValueError(f"Command.arg: {self.action} needs {NEEDS[self.action]}")


NEEDS = {
    "halt": "a reason",
    "promote": "a version",
    "feed_stop": "an asset class",
    "feed_start": "an asset class",
    "job_start": "a job kind",
}


PROMPTS = {
    "halt": "**Halt all trading (kill switch)?** No new entries; every position is flattened at "
    "the next bar, until you resume. Reason: `{arg}`",
    "resume": "**Resume trading?** Clears the kill switch and REDUCING (a daily-drawdown halt "
    "stays until the next trading day).",
    "reducing_on": "**Switch to REDUCING?** Exits only: no new positions.",
    "reducing_off": "**Leave REDUCING?** New entries are allowed again.",
    "promote": "**Promote `{arg}`?** The worker serves it from the next bar on.",
    "feed_stop": "**Stop the `{arg}` feed?** Its bars stop reaching the loop: nothing is decided "
    "on them, and once the feed is silent past its limit the class goes REDUCING (exits only).",
    "feed_start": "**Start the `{arg}` feed again?** Its bars flow to the loop; REDUCING for a "
    "stale feed lifts at the next bar.",
    "job_start": "**Start a `{arg}` job?** A walk-forward of the data this worker trades "
    "(quick preset) as a Ray job, or a subprocess without a cluster; it takes the machine's "
    "CPUs for minutes. Its model is registered, not promoted.",
}


def prompt_markdown(command: Command) -> str:
    return PROMPTS[command.action].format(arg=command.arg.replace("`", "'"))


def risk_answer_markdown(command: Command, risk: Json) -> str:
    """What the API answered to a risk command: the state it is in now and why."""
    reasons = ", ".join(risk.get("reasons", [])) or "none"
    halt = risk.get("halt_until")
    tail = f"; halted until {when(halt)}" if halt else ""
    state = html.escape(str(risk.get("state")))
    return (
        f"**OK:** `{command.action}` done. The API reports **{state}** "
        f"(reasons: {html.escape(reasons)}{tail})."
    )


def promotion_markdown(answer: Json) -> str:
    previous = answer.get("previous") or "nothing"
    return (
        f"**OK:** promoted `{answer.get('current')}` (was `{previous}`): served from the next bar."
    )


def feed_answer_markdown(command: Command, answer: Json) -> str:
    states = ", ".join(f"{c['asset_class']}: {c['state']}" for c in answer.get("classes", []))
    return f"**OK:** `{command.action}` `{html.escape(command.arg)}` done. Feeds: {states}."


def job_answer_markdown(answer: Json) -> str:
    return (
        f"**OK:** job `{answer.get('id')}` submitted ({answer.get('runner')}): "
        f"{answer.get('status')}. Follow it in Models and research."
    )


def error_markdown(message: str) -> str:
    return f"**Error:** {html.escape(message, quote=False)}"
