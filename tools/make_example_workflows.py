"""Writes example_workflows/*.json (ComfyUI UI format) and their sample input images.

Run it after changing a node's inputs; the real-ComfyUI tests convert every
workflow back with ComfyUI's own /object_info, so a widget list that no longer
matches a node fails there. Usage: python tools/make_example_workflows.py
"""

from __future__ import annotations

import json
from pathlib import Path

from PIL import Image, ImageDraw

OUT = Path(__file__).resolve().parents[1] / "example_workflows"
INPUTS = {"person": "qwen_example_person.png", "car": "qwen_example_car.png",
          "highway": "qwen_example_highway.png"}


class Graph:
    """Just enough of LiteGraph's serialisation for ComfyUI to load and run a workflow."""

    def __init__(self) -> None:
        self.nodes: list[dict] = []
        self.links: list[list] = []

    def node(self, kind: str, widgets: list, inputs=(), outputs=(), x=0, y=0, w=320, h=120,
             title: str | None = None) -> dict:
        node = {"id": len(self.nodes) + 1, "type": kind, "pos": [x, y], "size": [w, h], "flags": {},
                "order": len(self.nodes), "mode": 0,
                "inputs": [dict(name=n, type=t, link=None, **({"widget": {"name": n}} if widget else {}))
                           for n, t, widget in (i if len(i) == 3 else (*i, False) for i in inputs)],
                "outputs": [{"name": n, "type": t, "links": [], "slot_index": s} for s, (n, t) in enumerate(outputs)],
                "properties": {"Node name for S&R": kind}, "widgets_values": widgets}
        if title:
            node["title"] = title
        self.nodes.append(node)
        return node

    def link(self, source: dict, slot: int, target: dict, input_name: str) -> None:
        link_id = len(self.links) + 1
        index = next(i for i, inp in enumerate(target["inputs"]) if inp["name"] == input_name)
        kind = source["outputs"][slot]["type"]
        self.links.append([link_id, source["id"], slot, target["id"], index, kind])
        source["outputs"][slot]["links"].append(link_id)
        target["inputs"][index]["link"] = link_id

    def dump(self, path: Path, note: str) -> None:
        data = {"last_node_id": len(self.nodes), "last_link_id": len(self.links), "nodes": self.nodes,
                "links": self.links, "groups": [], "config": {},
                "extra": {"ds": {"scale": 0.8, "offset": [0, 0]}, "info": note}, "version": 0.4}
        path.write_text(json.dumps(data, indent=1) + "\n")


def load_image(g: Graph, name: str, x: int, y: int) -> dict:
    return g.node("LoadImage", [name, "image"], outputs=[("IMAGE", "IMAGE"), ("MASK", "MASK")],
                  x=x, y=y, w=300, h=330)


def qwen(g: Graph, prompt: str, x: int, y: int, *, num_images=1, seed=42, batch_mode="all images in one edit",
         image_size="auto", width=1024, height=1024, model="custom", steps=30, guidance=4.0) -> dict:
    widgets = [prompt, "", image_size, width, height, steps, guidance, num_images, seed, "fixed", False, True, "png",
               "default", False, batch_mode, 4, "pad", 900, False, "fal-ai/qwen-image-edit-plus", "", model,
               "fit model", "png", -1, "default"]
    inputs = [("image_1", "IMAGE"), ("image_2", "IMAGE"), ("image_3", "IMAGE"),
              ("image_urls", "STRING", True), ("connection", "FAL_CONNECTION"), ("loras", "FAL_LORAS")]
    outputs = [("images", "IMAGE"), ("seed", "INT"), ("info", "STRING"), ("mask", "MASK")]
    return g.node("FalQwenImageEditPlus", widgets, inputs, outputs, x=x, y=y, w=400, h=720)


def lora(g: Graph, url: str, scale: float, x: int, y: int, title: str) -> dict:
    return g.node("FalQwenLora", [url, scale], inputs=[("loras", "FAL_LORAS")], outputs=[("loras", "FAL_LORAS")],
                  x=x, y=y, w=420, h=110, title=title)


def save(g: Graph, prefix: str, x: int, y: int) -> dict:
    return g.node("SaveImage", [prefix], inputs=[("images", "IMAGE")], x=x, y=y, w=400, h=420)


def preview_text(g: Graph, x: int, y: int) -> dict:
    return g.node("PreviewAny", [], inputs=[("source", "*")], x=x, y=y, w=400, h=200, title="request info")


def single_edit() -> Graph:
    g = Graph()
    src = load_image(g, INPUTS["person"], 0, 0)
    edit = qwen(g, "Change the jacket to bright red, keep the face and pose unchanged.", 340, 0)
    out = save(g, "qwen_edit/single", 780, 0)
    info = preview_text(g, 780, 460)
    g.link(src, 0, edit, "image_1")
    g.link(edit, 0, out, "images")
    g.link(edit, 2, info, "source")
    return g


def three_images() -> Graph:
    g = Graph()
    people = load_image(g, INPUTS["person"], 0, 0)
    car = load_image(g, INPUTS["car"], 0, 360)
    road = load_image(g, INPUTS["highway"], 0, 720)
    connection = g.node("FalQwenConnection", ["auto", "", "FAL_KEY", "auto", "default", "default"],
                        outputs=[("connection", "FAL_CONNECTION")], x=0, y=1080, w=300, h=160)
    edit = qwen(g, "The woman from image 1 stands in front of the car from image 2 on the highway from "
                   "image 3. Photorealistic, evening light.", 340, 0, image_size="landscape_16_9")
    out = save(g, "qwen_edit/three_images", 780, 0)
    for node, name in ((people, "image_1"), (car, "image_2"), (road, "image_3")):
        g.link(node, 0, edit, name)
    g.link(connection, 0, edit, "connection")
    g.link(edit, 0, out, "images")
    return g


def batch_edit() -> Graph:
    g = Graph()
    first = load_image(g, INPUTS["person"], 0, 0)
    second = load_image(g, INPUTS["car"], 0, 360)
    batch = g.node("ImageBatch", [], inputs=[("image1", "IMAGE"), ("image2", "IMAGE")],
                   outputs=[("IMAGE", "IMAGE")], x=340, y=200, w=200, h=60)
    edit = qwen(g, "Turn this photo into a watercolour painting.", 580, 0,
                batch_mode="one edit per image_1 frame")
    out = save(g, "qwen_edit/batch", 1020, 0)
    g.link(first, 0, batch, "image1")
    g.link(second, 0, batch, "image2")
    g.link(batch, 0, edit, "image_1")
    g.link(edit, 0, out, "images")
    return g


def mixed_with_core_nodes() -> Graph:
    g = Graph()
    src = load_image(g, INPUTS["highway"], 0, 0)
    upload = g.node("FalQwenUploadImage", [], inputs=[("image", "IMAGE"), ("connection", "FAL_CONNECTION")],
                    outputs=[("urls", "STRING")], x=340, y=0, w=300, h=80)
    edit = qwen(g, "Add light rain and wet reflections on the road.", 680, 0)
    scale = g.node("ImageScale", ["bicubic", 256, 256, "center"], inputs=[("image", "IMAGE")],
                   outputs=[("IMAGE", "IMAGE")], x=1120, y=0, w=300, h=130)
    composite = g.node("ImageCompositeMasked", [16, 16, False],
                       inputs=[("destination", "IMAGE"), ("source", "IMAGE"), ("mask", "MASK")],
                       outputs=[("IMAGE", "IMAGE")], x=1120, y=180, w=300, h=150)
    out = save(g, "qwen_edit/mixed", 1460, 0)
    from_url = g.node("FalQwenLoadImageFromUrl", ["", "pad"], inputs=[("urls", "STRING", True)],
                      outputs=[("image", "IMAGE"), ("mask", "MASK")], x=340, y=140, w=300, h=120,
                      title="Load uploaded input back (check)")
    check = save(g, "qwen_edit/uploaded_input", 0, 400)
    g.link(src, 0, upload, "image")
    g.link(src, 0, edit, "image_1")
    g.link(edit, 0, scale, "image")
    g.link(src, 0, composite, "destination")
    g.link(scale, 0, composite, "source")
    g.link(composite, 0, out, "images")
    g.link(upload, 0, from_url, "urls")
    g.link(from_url, 0, check, "images")
    return g


# Community LoRAs for Qwen-Image-Edit-2509, on Hugging Face (public "resolve" links fal can download).
RELIGHT = "https://huggingface.co/dx8152/Qwen-Image-Edit-2509-Relight/resolve/main/Qwen-Edit-Relight.safetensors"
NEXT_SCENE = ("https://huggingface.co/lovis93/next-scene-qwen-image-lora-2509/resolve/main/"
              "next-scene_lora_v1-3000.safetensors")


def lora_chain() -> Graph:
    g = Graph()
    src = load_image(g, INPUTS["highway"], 0, 0)
    relight = lora(g, RELIGHT, 0.8, 0, 360, "fal LoRA: relight")
    next_scene = lora(g, NEXT_SCENE, 1.0, 0, 500, "fal LoRA: next scene")
    edit = qwen(g, "Next Scene: the camera pulls back to show the whole highway at sunset, warm low light from "
                   "the left.", 460, 0, model="qwen-edit-plus-lora", steps=28)
    out = save(g, "qwen_edit/lora_chain", 900, 0)
    info = preview_text(g, 900, 460)
    g.link(src, 0, edit, "image_1")
    g.link(relight, 0, next_scene, "loras")
    g.link(next_scene, 0, edit, "loras")
    g.link(edit, 0, out, "images")
    g.link(edit, 2, info, "source")
    return g


def edit_2511() -> Graph:
    g = Graph()
    person = load_image(g, INPUTS["person"], 0, 0)
    car = load_image(g, INPUTS["car"], 0, 360)
    edit = qwen(g, "The woman from image 1 leans on the car from image 2; keep her face and the car's colour.",
                340, 0, model="qwen-edit-2511", steps=28, guidance=4.5)
    out = save(g, "qwen_edit/2511", 780, 0)
    info = preview_text(g, 780, 460)
    g.link(person, 0, edit, "image_1")
    g.link(car, 0, edit, "image_2")
    g.link(edit, 0, out, "images")
    g.link(edit, 2, info, "source")
    return g


def sample_inputs() -> dict[str, Image.Image]:
    """Simple drawn stand-ins for a person, a car and a highway (no downloads needed)."""
    person = Image.new("RGB", (384, 512), (196, 214, 230))
    d = ImageDraw.Draw(person)
    d.ellipse((152, 60, 232, 150), fill=(224, 186, 160))
    d.rectangle((132, 150, 252, 360), fill=(40, 70, 140))
    d.rectangle((142, 360, 182, 500), fill=(50, 50, 60))
    d.rectangle((202, 360, 242, 500), fill=(50, 50, 60))
    car = Image.new("RGB", (512, 320), (170, 200, 170))
    d = ImageDraw.Draw(car)
    d.rounded_rectangle((60, 140, 452, 250), 30, fill=(180, 30, 40))
    d.polygon([(140, 140), (190, 80), (340, 80), (390, 140)], fill=(150, 20, 30))
    for cx in (140, 372):
        d.ellipse((cx - 36, 214, cx + 36, 286), fill=(25, 25, 25))
    road = Image.new("RGB", (512, 288), (120, 170, 230))
    d = ImageDraw.Draw(road)
    d.rectangle((0, 140, 512, 288), fill=(90, 140, 80))
    d.polygon([(220, 140), (292, 140), (480, 288), (32, 288)], fill=(70, 70, 75))
    for y in range(150, 288, 30):
        d.rectangle((252, y, 260, y + 14), fill=(240, 240, 240))
    return {"person": person, "car": car, "highway": road}


EXAMPLES = {
    "qwen_edit_single": (single_edit, "One image, one edit: LoadImage → Qwen Image Edit Plus → Save."),
    "qwen_edit_three_images": (three_images, "Three references composed into one scene, with a fal "
                                             "Connection node that names the key's variable (never the key)."),
    "qwen_edit_batch": (batch_edit, "A batch of two images, one edit per frame, run concurrently."),
    "qwen_edit_mixed_core": (mixed_with_core_nodes, "Edit, then scale and composite the result with core "
                                                    "nodes; fal Upload Image → Load Image from URL shows the "
                                                    "hosted input round trip."),
    "qwen_edit_lora_chain": (lora_chain, "Two community LoRAs (relight, next scene) chained into the LoRA "
                                         "endpoint, qwen-edit-plus-lora."),
    "qwen_edit_2511": (edit_2511, "Two references on Qwen Image Edit 2511 (model qwen-edit-2511)."),
}


def main() -> None:
    (OUT / "inputs").mkdir(parents=True, exist_ok=True)
    for key, image in sample_inputs().items():
        image.save(OUT / "inputs" / INPUTS[key])
    for name, (build, note) in EXAMPLES.items():
        build().dump(OUT / f"{name}.json", note + " Copy example_workflows/inputs/* into ComfyUI/input first.")
    print(f"wrote {len(EXAMPLES)} workflows and {len(INPUTS)} inputs to {OUT}")


if __name__ == "__main__":
    main()
