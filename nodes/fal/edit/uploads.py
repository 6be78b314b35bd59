"""Inputs to URLs for the edit client: IMAGE frames encoded and uploaded (or inlined), several at once.

A mixin of ``FalEditClient`` (pipeline.py), which holds the ``uploader`` (media/storage.py).
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import Any, Sequence

from ..base.phases import phase
from ..base.waiting import Waiter
from ..media.images import encode_png, split_batch
from ..media.inputs import PreparedImage, encode
from ..media.storage import Uploader


class Uploads:
    uploader: Uploader

    @staticmethod
    def encode_frames(images: Sequence[Any]) -> list[bytes]:
        frames = [frame for image in images for frame in split_batch(image)]
        if len(frames) <= 1:
            return [encode_png(f) for f in frames]
        with ThreadPoolExecutor(max_workers=min(4, len(frames)), thread_name_prefix="fal-png") as pool:
            return list(pool.map(encode_png, frames))

    def upload_pngs(self, pngs: Sequence[bytes], *, waiter: Waiter | None = None,
                    digests: Sequence[str | None] = ()) -> list[str]:
        """``digests``: the PNGs' sha256 hex, when known (the upload cache's key)."""
        waiter = waiter or Waiter()
        digests = list(digests) or [None] * len(pngs)

        def one(index: int) -> str:
            waiter.check()
            return self.uploader.url_for(pngs[index], "image/png", waiter=waiter, digest=digests[index])

        if len(pngs) <= 1:
            return [one(i) for i in range(len(pngs))]
        with ThreadPoolExecutor(max_workers=min(4, len(pngs)), thread_name_prefix="fal-up") as pool:
            return list(pool.map(one, range(len(pngs))))

    def upload_images(self, images: Sequence[Any], *, waiter: Waiter | None = None) -> list[str]:
        """IMAGE tensors (each may be a batch) → one URL per image, in order."""
        return self.upload_pngs(self.encode_frames(images), waiter=waiter)

    def upload_prepared(self, inputs: Sequence[PreparedImage], upload_format: str = "png", *,
                        waiter: Waiter | None = None) -> list[str]:
        """One URL per prepared input, in order. Each input is encoded and sent on its own thread, so
        the first one's bytes are on the wire while the later ones still encode."""
        waiter = waiter or Waiter()

        def one(image: PreparedImage) -> str:
            waiter.check()
            with phase("encode"):
                data, content_type = encode(image, upload_format)
            with phase("data URI or upload"):
                return self.uploader.url_for(data, content_type, waiter=waiter,
                                             digest=f"{image.digest}:{upload_format}")

        if len(inputs) <= 1:
            return [one(image) for image in inputs]
        with ThreadPoolExecutor(max_workers=min(4, len(inputs)), thread_name_prefix="fal-up") as pool:
            return list(pool.map(one, inputs))
