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

    action: str  # halt | resume | reducing_on | reducing_off | promote
    arg: str = ""

    def __post_init__(self) -> None:
        if self.action not in PROMPTS:
            raise ValueError(f"Command.action={self.action!r}: expected one of {sorted(PROMPTS)}")
        if self.action in ("halt", "promote") and not self.arg.strip():
            what = "a reason" if self.action == "halt" else "a version"
            raise ValueError(f"Command.arg: {self.action} needs {what}")


PROMPTS = {
    "halt": "**Halt all trading (kill switch)?** No new entries; every position is flattened at "
    "the next bar, until you resume. Reason: `{arg}`",
    "resume": "**Resume trading?** Clears the kill switch and REDUCING (a daily-drawdown halt "
    "stays until the next trading day).",
    "reducing_on": "**Switch to REDUCING?** Exits only: no new positions.",
    "reducing_off": "**Leave REDUCING?** New entries are allowed again.",
    "promote": "**Promote `{arg}`?** The worker serves it from the next bar on.",
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


def error_markdown(message: str) -> str:
    return f"**Error:** {html.escape(message, quote=False)}"
