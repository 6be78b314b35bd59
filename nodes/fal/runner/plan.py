"""From lines to a plan: every line made an ``Item`` (its request, images, identity and estimate)
and checked, then what this run does with it (run, skip as done, skip as failed) and whether the
daily cap, and a gateway's balance, allow it.

An item's identity (``key``) is the endpoint, every field it sends, its images as
the manifest wrote them, and how inputs are prepared (input_resize, upload
format): the same line in a later run, even moved to another line number, is the
same item, while a changed prompt or seed is a new one. Repeats of one identical
line are told apart by their order.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from dataclasses import dataclass, field
from typing import Any, Sequence

from ..models.endpoints import EndpointSpec
from ..models.pricing import Estimate, PriceLookup, table_price
from ..models.qwen import Lora, QwenEditRequest, parse_lora
from ..media.inputs import InputLimits, estimate_run, size_problem
from ..platform.balance import TOKEN_USAGE, Balance
from ..state.budget import PRICE_HINT, RAISE_HINT, Budget, BudgetError
from .manifest import Line, ManifestError, name_lines
from .results import DONE, FAILED, RUNNING
from .sources import Source, check_images


@dataclass
class Item:
    line: Line
    request: QwenEditRequest  # its fields and its URL images; its files go as prepared inputs
    sources: list[Source]
    key: str
    estimate: Estimate
    resubmit: bool = False  # its earlier submit's answer was lost, and --retry-failed says submit it again

    @property
    def name(self) -> str:
        name = self.line.name
        assert name is not None, "build_items names every line (name_lines) before it makes an item"
        return name

    def record(self, status: str, **values: Any) -> dict[str, Any]:
        """A results-file line for this item (results.py)."""
        return {"line": self.line.number, "name": self.line.name, "status": status, **values, "key": self.key}


@dataclass
class Plan:
    items: list[Item]
    to_run: list[Item] = field(default_factory=list)
    done_before: list[Item] = field(default_factory=list)
    failed_before: list[Item] = field(default_factory=list)  # failed in an earlier run, not retried
    resuming: set[str] = field(default_factory=set)          # keys whose job an earlier run submitted
    earlier: dict[str, dict] = field(default_factory=dict)   # the results file's last record per key

    def new_jobs(self) -> list[Item]:
        """Items this run will submit (a resumed job was paid for by the run that submitted it)."""
        return [item for item in self.to_run if item.key not in self.resuming]

    def cost(self) -> float:
        """The new jobs' estimate (those of unknown price count nothing: ``unpriced`` says how many)."""
        return round(sum(item.estimate.usd or 0.0 for item in self.new_jobs()), 4)

    def unpriced(self) -> list[Item]:
        return [item for item in self.new_jobs() if item.estimate.usd is None]


class BatchOverCapError(BudgetError):
    """The batch's estimate is above what the daily cap has left; nothing was started."""


class BatchOverBalanceError(BudgetError):
    """The batch's estimate is above the balance the gateway reports; nothing was started."""


def build_items(lines: list[Line], base: QwenEditRequest, spec: EndpointSpec, resize: str,
                upload_format: str, what: str, price_of: PriceLookup = table_price) -> list[Item]:
    """Every line as an Item; ManifestError with every problem of every line (and nothing made) if any:
    its fields against the model's own ranges, its files against the model's per-image limits (their
    sizes from the headers; the byte cap is met while each is prepared, media/inputs.py)."""
    name_lines(lines)
    limits = InputLimits.of(spec)
    items: list[Item] = []
    seen: dict[str, int] = {}
    for line in lines:
        sources, problems = check_images(line.images, line.base)
        line.problems += problems
        request = _request(base, line, [s.text for s in sources if s.is_url])
        if request is None:
            continue
        files = sum(not s.is_url for s in sources)
        counted = files if line.images and not problems else None  # a missing image is reported once
        line.problems += request.problems(spec, images_to_come=counted)
        line.problems += [problem for source in sources if source.size is not None
                          if (problem := size_problem(source.size, limits, resize, f"images: {source.text}"))]
        if line.problems:
            continue
        identity = hashlib.sha256(json.dumps(
            {"endpoint": spec.endpoint, "arguments": request.arguments_without_images(spec), "images": line.images,
             "input_resize": resize, "upload_format": upload_format}, sort_keys=True).encode()).hexdigest()[:32]
        seen[identity] = seen.get(identity, 0) + 1
        key = identity if seen[identity] == 1 else f"{identity}-{seen[identity]}"
        cost = estimate_run(spec, request, [s.size for s in sources if s.size is not None], resize,
                            price_of=price_of)  # the files'
        items.append(Item(line, request, sources, key, cost))
    problems = [f"{line.where}: {problem}" for line in lines for problem in line.problems]
    if problems:
        raise ManifestError(problems, what)
    return items


def _request(base: QwenEditRequest, line: Line, urls: list[str]) -> QwenEditRequest | None:
    values = dict(line.fields)
    if "loras" in values:
        loras = values["loras"]
        if not isinstance(loras, list):
            line.problems.append("loras: give a list of LoRAs ({\"path\": URL, \"scale\": S} or \"URL:SCALE\")")
            return None
        values["loras"] = []
        for lora in loras:
            if isinstance(lora, str):
                values["loras"].append(parse_lora(lora))
            elif isinstance(lora, dict) and isinstance(lora.get("path"), str) and set(lora) <= {"path", "scale"}:
                values["loras"].append(Lora(lora["path"], lora.get("scale", 1.0)))
            else:
                line.problems.append(f"loras: {str(lora)[:60]!r} is neither \"URL:SCALE\" nor "
                                     "{\"path\": URL, \"scale\": S}")
                return None
    return dataclasses.replace(base, image_urls=urls, **values)


def make_plan(items: list[Item], earlier: dict[str, dict], retry_failed: bool) -> Plan:
    plan = Plan(items, earlier=earlier)
    for item in items:
        status = earlier.get(item.key, {}).get("status")
        # A submit whose answer was lost: every run looks for its job in fal's history again (the
        # pipeline's journal: edit/submits.py); --retry-failed submits it anew, knowingly.
        uncertain = status == FAILED and bool(earlier[item.key].get("uncertain"))
        if status == DONE:
            plan.done_before.append(item)
        elif status == FAILED and not retry_failed and not uncertain:
            plan.failed_before.append(item)
        else:
            plan.to_run.append(item)
            item.resubmit = uncertain and retry_failed
            if status == RUNNING or (uncertain and not retry_failed):
                plan.resuming.add(item.key)
    return plan


def check_cap(plan: Plan, budget: Budget) -> None:
    """Refuse, before anything is uploaded, a batch whose new jobs cost more than the cap has left,
    saying how many of them fit."""
    if budget.cap_usd is None:
        return
    unpriced = plan.unpriced()
    if unpriced:  # never a cap silently lifted: a job whose price is unknown cannot be counted against it
        raise BatchOverCapError(
            f"Spending cap: {unpriced[0].estimate.text()}, so the {len(unpriced)} new jobs of this batch cannot be "
            f"held to your ${budget.cap_usd:.2f} daily cap. Nothing was uploaded or submitted. {PRICE_HINT}")
    spent = budget.spent()
    left = max(budget.cap_usd - spent, 0.0)
    total = plan.cost()
    if total <= left + 1e-9:
        return
    fit = items_within([item.estimate.usd or 0.0 for item in plan.new_jobs()], left)
    resumed = f" (besides {len(plan.resuming)} resumed, already paid)" if plan.resuming else ""
    raise BatchOverCapError(
        f"Spending cap: the {len(plan.new_jobs())} new jobs of this batch{resumed} cost about ${total:.2f}, and "
        f"${left:.2f} of your ${budget.cap_usd:.2f} daily cap is left (${spent:.2f} spent in the last 24 h): "
        f"{'only the first ' + str(fit) if fit else 'none'} of them fit. Nothing was uploaded or submitted. "
        f"{RAISE_HINT}")


def check_balance(plan: Plan, balance: Balance | None) -> None:
    """Refuse, before anything is uploaded, a batch whose new jobs cost more than the gateway says is left
    (its balance calls, platform/balance.py): every job past it would be refused one by one."""
    if balance is None or balance.usd is None or balance.unlimited or balance.source == TOKEN_USAGE:
        # fal direct, no balance call, an unlimited token, or new-api's raw quota whose dollar rate is only
        # assumed (the default 500,000): shown in the plan, but no reason to refuse a batch on a guess
        return
    total = plan.cost()
    if total <= balance.usd + 1e-9:
        return
    fit = items_within([item.estimate.usd or 0.0 for item in plan.new_jobs()], balance.usd)
    raise BatchOverBalanceError(
        f"Gateway balance: the {len(plan.new_jobs())} new jobs of this batch cost about ${total:.2f} at fal's "
        f"prices, and {balance.host} says ${balance.usd:.2f} is left: "
        f"{'only the first ' + str(fit) if fit else 'none'} of them fit. Nothing was uploaded or submitted. Top up "
        f"the balance in the gateway's console at {balance.host} (its prices may differ from fal's; its usage "
        "log says what an edit costs there).")


def items_within(costs: Sequence[float], left: float) -> int:
    """How many of ``costs``, in order, fit into ``left``."""
    total, count = 0.0, 0
    for usd in costs:
        total += usd
        if total > left + 1e-9:
            break
        count += 1
    return count
