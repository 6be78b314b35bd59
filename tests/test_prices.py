"""Where a price comes from (models/pricing.py): the table's, else fal's pricing API's (per megapixel or
per image, as fal gives it), else "price unknown", never a made-up figure. fal's price is asked when a job
is submitted, so even the first job on a fresh install is billed at it; and a daily cap is never silently
lifted by an unknown price: fal's pricing API is asked first, and the edit is refused if it tells none.
All against the fake fal server's pricing API (nodes/fakefal/routes/platform_api.py) over real HTTP."""

from __future__ import annotations

import io
import json
import time

import pytest
import torch
from PIL import Image

from comfyui_fal_qwen_edit.nodes.fakefal import FakeFal
from comfyui_fal_qwen_edit.nodes.fakefal.photos import synthetic_photo
from comfyui_fal_qwen_edit.nodes.fal.edit.connection import persistent_client
from comfyui_fal_qwen_edit.nodes.fal.edit.outcome import run_info
from comfyui_fal_qwen_edit.nodes.fal.models.endpoints import spec_for
from comfyui_fal_qwen_edit.nodes.fal.models.pricing import FROM_FAL, PER_IMAGE, PER_MEGAPIXEL, api_price, estimate
from comfyui_fal_qwen_edit.nodes.fal.models.qwen import QwenEditRequest
from comfyui_fal_qwen_edit.nodes.fal.platform.price_book import PriceBook
from comfyui_fal_qwen_edit.nodes.fal.runner.batch import run_batch
from comfyui_fal_qwen_edit.nodes.fal.runner.manifest import folder_lines
from comfyui_fal_qwen_edit.nodes.fal.runner.plan import BatchOverCapError
from comfyui_fal_qwen_edit.nodes.fal.runner.scheduler import RunSettings
from comfyui_fal_qwen_edit.nodes.fal.state.budget import BudgetError

from conftest import FAST_RETRY, KEY, config_for

QWEN_2 = "fal-ai/qwen-image-2/edit"
PICTURE = torch.from_numpy(synthetic_photo(480, 400, 0)[None])  # within the family's 384-5000 px


def client(server, state, cap=None, mode="fal"):
    return persistent_client(config_for(server, mode), state, retry=FAST_RETRY, budget_usd=cap)


def pricing_calls(server) -> list[str]:
    return [r.path for r in server.requests if r.path.startswith("/v1/models/pricing")]


def test_fals_unit_names_price_an_edit_and_others_do_not():
    assert api_price({"unit_price": 0.025, "unit": "megapixels", "currency": "USD"}).unit == PER_MEGAPIXEL
    assert api_price({"unit_price": 0.035, "unit": "image"}).unit == PER_IMAGE
    assert api_price({"unit_price": 0.2, "unit": "gpu_second", "currency": "USD"}) is None  # not an edit's unit
    assert api_price({"unit_price": 0.03, "unit": "image", "currency": "EUR"}) is None
    assert api_price({"unit": "image"}) is None and api_price(None) is None


def test_the_first_job_on_a_fresh_install_is_billed_at_fals_unit_price(fal, tmp_path):
    fal.unit_prices["fal-ai/qwen-image-edit-plus"] = 0.025  # the account's price (a discount), not the table's 0.03
    with client(fal, tmp_path) as made:
        outcome = made.edit(QwenEditRequest(prompt="p", seed=1), [PICTURE], timeout=30)
        job = made.history.get(outcome.handle.request_id)
        spent = made.budget.spent()
    assert outcome.estimate.usd == 0.03 and outcome.estimate.price.source == "endpoint table"  # the table first
    units = round(400 * 480 / 1024**2, 4)  # the fake bills output megapixels: the input's size here
    assert job["billed_units"] == units and job["unit_price_usd"] == 0.025 and job["price_source"] == FROM_FAL
    assert outcome.billed_usd == job["cost_usd_billed"] == round(units * 0.025, 4) == spent
    assert len(pricing_calls(fal)) == 1  # asked once, at the submit
    cached = json.loads((tmp_path / "prices.json").read_text())
    assert cached["fal-ai/qwen-image-edit-plus"]["unit_price"] == 0.025


def test_a_model_without_a_table_price_is_unknown_until_fal_tells_it_then_priced_per_image(fal, tmp_path):
    request = QwenEditRequest(prompt="p", seed=1, num_images=2)
    with client(fal, tmp_path) as made:
        first = made.edit(request, [PICTURE], model="qwen-image-2-edit", timeout=30)
        assert first.estimate.usd is None and first.cost_usd_estimate is None  # said, not guessed
        assert first.estimate.text().startswith("price unknown")
        assert run_info([first])["cost_usd_estimate"] is None
        assert first.billed_usd == 0.07  # 2 images x fal's $0.035 an image, asked while the job ran
        second = made.edit(QwenEditRequest(prompt="p", seed=2, num_images=2), [PICTURE], model="qwen-image-2-edit",
                           timeout=30)
    assert second.estimate.usd == 0.07 and second.estimate.price.unit == PER_IMAGE
    assert second.estimate.text() == "about $0.070 (2 images x $0.035/image, fal pricing API)"
    assert len(pricing_calls(fal)) == 1  # fresh for a day: not asked again


def test_each_endpoint_is_asked_for_its_own_price(fal, tmp_path):
    with client(fal, tmp_path) as made:
        made.edit(QwenEditRequest(prompt="p", seed=1), [PICTURE], timeout=30)
        made.edit(QwenEditRequest(prompt="p", seed=1), [PICTURE], model="qwen-image-max-edit", timeout=30)
    asked = [r.query.get("endpoint_id") for r in fal.requests if r.path.startswith("/v1/models/pricing")]
    assert asked == ["fal-ai/qwen-image-edit-plus", "fal-ai/qwen-image-max/edit"]


def test_with_a_cap_an_unknown_price_is_asked_first_and_then_counted(fal, tmp_path):
    with client(fal, tmp_path, cap=1.0) as made:
        outcome = made.edit(QwenEditRequest(prompt="p", seed=1), [PICTURE], model="qwen-image-2-pro-edit", timeout=30)
        assert made.budget.spent() == 0.075
    assert outcome.estimate.usd == 0.075 and outcome.estimate.price.source == FROM_FAL
    first_pricing = next(i for i, r in enumerate(fal.requests) if r.path.startswith("/v1/models/pricing"))
    first_upload = next(i for i, r in enumerate(fal.requests) if r.path == "/cdn/files/upload")
    assert first_pricing < first_upload  # asked before anything was uploaded or paid


def test_with_a_cap_a_price_nobody_knows_is_refused_before_anything_is_sent(fal, tmp_path):
    del fal.unit_prices[QWEN_2]  # fal's pricing API has no price for it either
    with client(fal, tmp_path, cap=5.0) as made:
        with pytest.raises(BudgetError) as info:
            made.edit(QwenEditRequest(prompt="p", seed=1), [PICTURE], model="qwen-image-2-edit", timeout=30)
        assert made.budget.spent() == 0.0
    message = str(info.value)
    assert message.startswith("Spending cap: price unknown: the pack's table has no price for qwen-image-2-edit")
    assert "cannot be held to your $5.00 daily cap" in message and "Nothing was uploaded or submitted" in message
    assert "fal direct with a fal key" in message and "remove the cap" in message
    assert fal.uploads == [] and fal.submissions == 0
    assert [r.path for r in fal.requests] == ["/v1/models/pricing"]  # only fal's price was asked


def test_a_gateway_with_a_cap_cannot_learn_the_price_so_refuses(tmp_path):
    with FakeFal(key=KEY, mode="gateway", max_lifetime=60).start() as server:
        with client(server, tmp_path, cap=5.0, mode="gateway") as made:
            with pytest.raises(BudgetError, match="price unknown.*a gateway or proxy cannot reach that API"):
                made.edit(QwenEditRequest(prompt="p", seed=1), [PICTURE], model="qwen-image-max-edit", timeout=30)
        assert server.requests == []


def test_without_a_cap_an_unknown_price_runs_and_the_ledger_takes_the_bill(fal, tmp_path):
    with client(fal, tmp_path) as made:
        outcome = made.edit(QwenEditRequest(prompt="p", seed=1), [PICTURE], model="qwen-image-2-edit", timeout=30)
        assert made.budget.spent() == 0.035  # entered at $0 (unpriced), then settled to fal's billed figure
    ledger = [json.loads(line) for line in (tmp_path / "spend.jsonl").read_text().splitlines()]
    assert ledger[0]["usd"] == 0 and ledger[0]["unpriced"] is True and outcome.billed_usd == 0.035


def test_the_cache_is_read_by_the_estimate_and_only_the_table_is_preferred(tmp_path):
    path = tmp_path / "prices.json"
    path.write_text(json.dumps({
        "fal-ai/qwen-image-edit-plus": {"unit_price": 0.02, "unit": "megapixels", "fetched_at": time.time()},
        "fal-ai/qwen-image-edit-lora": {"unit_price": 0.04, "unit": "megapixels", "fetched_at": 1},
        "fal-ai/qwen-image-edit-2509": {"unit_price": 0.2, "unit": "gpu_second", "fetched_at": 1}}))
    book = PriceBook(path)  # no platform: read only, as the price route uses it
    assert book.price_for(spec_for("qwen-edit-plus")).usd == 0.03  # the table's first
    assert book.price_for(spec_for("qwen-edit-lora")).usd == 0.04  # a stale entry still prices an estimate
    assert book.price_for(spec_for(endpoint="fal-ai/qwen-image-edit-2509")) is None  # a unit that cannot
    assert book.price_for(spec_for("qwen-image-2-edit"), ask=True) is None  # no platform: nothing asked
    assert estimate(spec_for("qwen-edit-lora"), "square_hd", 2, [], price_of=book.price_for).usd == 0.08


def test_a_batch_of_unknown_price_with_a_cap_is_refused_up_front(fal, tmp_path):
    del fal.unit_prices["fal-ai/qwen-image-max/edit"]
    folder = tmp_path / "in"
    folder.mkdir()
    for i in range(3):
        Image.fromarray(synthetic_photo(400, 400, i)).save(folder / f"{i}.png")
    lines = folder_lines(folder, [])
    with client(fal, tmp_path / "state", cap=5.0) as made:
        with pytest.raises(BatchOverCapError, match="price unknown.*the 3 new jobs of this batch cannot be held"):
            run_batch(made, lines, QwenEditRequest(prompt="p"), spec_for("qwen-image-max-edit"), tmp_path / "out",
                      RunSettings(), should_cancel=lambda: False, stream=io.StringIO())
    assert fal.uploads == [] and fal.submissions == 0
