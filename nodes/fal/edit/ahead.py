"""An edit's inputs on their way while the edit still decides what to do with them.

The edit needs every input's prepared pixels before anything else (they are its identity: result
cache, journal), but on a thin uplink the bytes, not the CPU, should set the pace. So each input is
prepared (uint8, resized), encoded and, for fal storage, uploaded as soon as it can be: the inputs
are prepared one after another, each on every core, and each one is encoded while the next is
prepared, and an encoded input goes out on its own thread while the next ones are still being
resized. Only then: once every input is prepared, the edit decides at once
(result cache, journal), and an upload made before that might be one a cached result or a resumed
job does not need. On such a decision, or any failure, what is still going out is abandoned
(``close``).

Uploads go ahead only once the edit is counted against the spending cap (``FalEditClient.edit``
reserves it first; without that reservation only the CPU work goes ahead), so an edit the cap
refuses has uploaded nothing. Through a gateway the inputs become data URIs here; the submit that
carries them waits for all of them, since its Content-Length must be known before its first byte
(fal's ingress is not known to take a chunked request body), and then streams them as they are
(base/json_text.py).
"""

from __future__ import annotations

import threading
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, Sequence

from ..base.phases import phase
from ..base.waiting import CHECK_INTERVAL, Waiter
from ..media.inputs import InputLimits, PreparedImage, encode, estimate_run, prepare
from ..media.storage import Uploader
from ..models.endpoints import EndpointSpec
from ..models.pricing import PriceLookup, table_price
from ..models.qwen import QwenEditRequest
from ..platform.fingerprints import ListDigest
from ..state.budget import Budget, BudgetError, Charge

# One input prepared at a time, in order, each on every core (media/resample.py cuts its downscale into
# strips), so the first is ready in about half the time it took when two were prepared side by side, and
# with fal storage its upload starts that much sooner; a gateway's submit waits for the last input, which
# is ready no later than before (the cores were busy either way). Encoded while the next ones are being
# prepared, two at a time: inputs that need no downscale are prepared in a few ms and their encodings,
# then most of the work, share the cores.
ENCODING = 2
SENDING = 4    # uploads at once


def charge_ahead(budget: Budget, spec: EndpointSpec, request: QwenEditRequest, frames: Sequence[Any],
                 resize: str, price_of: PriceLookup = table_price) -> Charge | None:
    """The edit counted against the cap before its inputs are prepared (the estimate it will carry, from
    its inputs' sizes), so their uploads may go ahead; None when the cap would refuse it (or the price is
    unknown under a cap): then nothing goes ahead, and the edit is refused after the result cache was
    asked, as before."""
    if not frames:
        return None
    cost = estimate_run(spec, request, [(frame.shape[1], frame.shape[0]) for frame in frames], resize, 1, price_of)
    try:
        charge, = budget.reserve([cost.usd], cost.what())
    except BudgetError:
        return None
    return charge


class InputsAhead:
    def __init__(self, frames: Sequence[Any], spec: EndpointSpec, resize: str, upload_format: str,
                 uploader: Uploader, waiter: Waiter, charge: Charge | None, given: Sequence[str] = ()):
        """``charge``: the edit's entry in the spending ledger (``charge_ahead``), so fal storage uploads may
        start before ``urls``; released by ``close`` unless the edit's submit may have reached fal. Each
        input is prepared within ``spec``'s own per-image limits (media/inputs.py), or refused. ``given``:
        the request's own image URLs, which come before these inputs' in the submit (``digests_for``)."""
        self.upload_format, self.charge = upload_format, charge
        upload = charge is not None
        self._limits, self._count = InputLimits.of(spec), len(frames)
        self.uploader = uploader
        self._ahead = upload
        self._go = threading.Event()  # set by ``urls`` (the edit goes on) and ``close`` (it does not)
        self._abandoned = threading.Event()
        hook = waiter.should_cancel
        # The uploads' own waiter: the edit's Cancel and deadline, and this object's close.
        self._waiter = Waiter(lambda: self._abandoned.is_set() or bool(hook and hook()), waiter.remaining())
        self._prepared: list[Future[PreparedImage]] = [Future() for _ in frames]
        self._urls: list[Future[str]] = [Future() for _ in frames]
        # The submit's image_urls fingerprinted as each URL is made (platform/fingerprints.py).
        self._given, self._digest = list(given), ListDigest(len(given) + len(frames))
        for index, url in enumerate(given):
            self._digest.add(index, url)
        self._cpu = ThreadPoolExecutor(max_workers=1, thread_name_prefix="fal-prep") if frames else None
        self._encoder = ThreadPoolExecutor(max_workers=ENCODING, thread_name_prefix="fal-encode") if frames else None
        self._net = ThreadPoolExecutor(max_workers=min(SENDING, len(frames)), thread_name_prefix="fal-up") \
            if frames and uploader.config.uses_storage else None
        for index, frame in enumerate(frames):
            assert self._cpu is not None
            self._cpu.submit(self._prepare, index, frame, spec.reads_area, resize)

    def _prepare(self, index: int, frame: Any, reads_area: int | None, resize: str) -> None:
        name = f"input image {index + 1} of {self._count}" if self._count > 1 else "the input image"
        try:
            image = prepare(frame, reads_area, resize, limits=self._limits, upload_format=self.upload_format,
                            name=name)
        except BaseException as exc:  # noqa: BLE001 - handed to the edit, which raises it
            self._prepared[index].set_exception(exc)
            self._urls[index].set_exception(exc)
            return
        self._prepared[index].set_result(image)
        try:
            assert self._encoder is not None
            self._encoder.submit(self._encode, index, image)  # while the next input is prepared
        except RuntimeError as exc:  # closed meanwhile: the edit is over
            self._urls[index].set_exception(exc)

    def _encode(self, index: int, image: PreparedImage) -> None:
        url = self._urls[index]
        try:
            self._waiter.check()
            with phase("encode"):
                data, content_type = encode(image, self.upload_format)
            if self._net is None:  # a data URI, made here on the encoder's turn
                url.set_result(self._url(index, image, data, content_type))
                return
            # Ahead of the edit's decision only while other inputs are still being prepared: once all
            # are, the decision comes at once, and the upload waits for it.
            hold = not self._ahead or all(future.done() for future in self._prepared)
            self._net.submit(self._send, index, image, data, content_type, hold)
        except BaseException as exc:  # noqa: BLE001
            url.set_exception(exc)

    def _send(self, index: int, image: PreparedImage, data: bytes, content_type: str, hold: bool) -> None:
        url = self._urls[index]
        try:
            while hold and not self._go.wait(CHECK_INTERVAL):
                self._waiter.check()
            self._waiter.check()
            url.set_result(self._url(index, image, data, content_type))
        except BaseException as exc:  # noqa: BLE001
            url.set_exception(exc)

    def _url(self, index: int, image: PreparedImage, data: bytes, content_type: str) -> str:
        with phase("data URI or upload"):
            made = self.uploader.url_for(data, content_type, waiter=self._waiter,
                                         digest=f"{image.digest}:{self.upload_format}")
        with phase("body and fingerprint"):
            self._digest.add(len(self._given) + index, made)  # before its future is set: see digests_for
        return made

    def prepared(self, waiter: Waiter) -> list[PreparedImage]:
        """Every input's prepared pixels, in order (the first failure raised)."""
        return [waiter.result(future) for future in self._prepared]

    def urls(self, waiter: Waiter) -> list[str]:
        """Every input's URL (uploaded, or a data URI), in order: the edit goes on, so what was held
        back goes out now, each input as soon as it is encoded."""
        self._go.set()
        return [waiter.result(future) for future in self._urls]

    def digests_for(self, arguments: dict[str, Any]) -> dict[str, str]:
        """The submit body's fields already fingerprinted (platform/fingerprints.py): ``image_urls``, when
        it is ``given + urls()`` (each URL was hashed before its future was set, so once ``urls`` has
        returned nothing is left to wait for). Empty when the body holds its images another way."""
        digest, urls = self._digest.value(), arguments.get("image_urls")
        if digest is None or not all(future.done() and not future.exception() for future in self._urls):
            return {}
        return {"image_urls": digest} if urls == [*self._given, *(f.result() for f in self._urls)] else {}

    def close(self) -> None:
        """Stop what is still going out (a cache hit, a resumed job, a failure) and end the threads."""
        self._abandoned.set()
        self._go.set()
        if self.charge is not None:
            self.charge.release_unless_paid()  # a cached result, a resumed job, a failure: it cost nothing
        for pool in (self._cpu, self._encoder, self._net):
            if pool is not None:
                pool.shutdown(wait=False, cancel_futures=True)

    def __enter__(self) -> "InputsAhead":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
