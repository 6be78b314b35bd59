"""Writes example_workflows/*.json (ComfyUI UI format) and their sample input images.

Run it after changing a node's inputs; the real-ComfyUI tests convert every
workflow back with ComfyUI's own /object_info, so a widget list that no longer
matches a node fails there, and load each one in the frontend (both renderers)
to check that no two nodes overlap and that the graph opens in view. Every
example names its model and carries no connection specifics (no key variable,
no base URL: the machine's settings decide), and uses no deprecated core node.
Then run tools/render_workflow_previews.py for the template browser's previews.
Usage: python tools/make_example_workflows.py
"""

from __future__ import annotations

import json
from pathlib import Path

from PIL import Image, ImageDraw

OUT = Path(__file__).resolve().parents[1] / "example_workflows"
INPUTS = {"person": "qwen_example_person.png", "car": "qwen_example_car.png",
          "highway": "qwen_example_highway.png", "frames": "qwen_example_frames.png"}
# The view a workflow opens with: the whole graph inside a 1280 x 720 canvas (a laptop's browser window
# below ComfyUI's menu bar), never larger than 1:1.
VIEW = (1280, 720)
TITLE = 30  # LiteGraph's title bar, above a node's pos
EDIT_H = 560  # the edit node with its common widgets as the Vue renderer draws them (the canvas: ~470)
ANGLES_H = 640  # the Multiple Angles node likewise


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

    def view(self, margin: int = 40) -> dict:
        """LiteGraph's saved view (screen = (pos + offset) * scale) that shows every node, title bars included."""
        x0 = min(n["pos"][0] for n in self.nodes)
        y0 = min(n["pos"][1] - TITLE for n in self.nodes)
        x1 = max(n["pos"][0] + n["size"][0] for n in self.nodes)
        y1 = max(n["pos"][1] + n["size"][1] for n in self.nodes)
        scale = min(1.0, (VIEW[0] - 2 * margin) / (x1 - x0), (VIEW[1] - 2 * margin) / (y1 - y0))
        scale = round(scale, 3)
        return {"scale": scale, "offset": [round(margin / scale - x0, 1), round(margin / scale - y0, 1)]}

    def dump(self, path: Path, note: str) -> None:
        data = {"last_node_id": len(self.nodes), "last_link_id": len(self.links), "nodes": self.nodes,
                "links": self.links, "groups": [], "config": {},
                "extra": {"ds": self.view(), "info": note}, "version": 0.4}
        path.write_text(json.dumps(data, indent=1) + "\n")


def load_image(g: Graph, name: str, x: int, y: int, h: int = 340) -> dict:
    return g.node("LoadImage", [name, "image"], outputs=[("IMAGE", "IMAGE"), ("MASK", "MASK")],
                  x=x, y=y, w=300, h=h)


def qwen(g: Graph, prompt: str, x: int, y: int, *, num_images=1, seed=42, batch_mode="all images in one edit",
         image_size="auto", width=1024, height=1024, model="qwen-edit-plus", steps=30, guidance=4.0,
         prompt_expansion=True) -> dict:
    widgets = [prompt, "", image_size, width, height, steps, guidance, num_images, seed, "fixed", False, True, "png",
               "default", False, batch_mode, 4, "pad", 900, False, "fal-ai/qwen-image-edit-plus", "", model,
               "fit model", "png", -1, "default", prompt_expansion]
    inputs = [("image_1", "IMAGE"), ("image_2", "IMAGE"), ("image_3", "IMAGE"),
              ("image_urls", "STRING", True), ("connection", "FAL_CONNECTION"), ("loras", "FAL_LORAS")]
    outputs = [("images", "IMAGE"), ("seed", "INT"), ("info", "STRING"), ("mask", "MASK")]
    return g.node("FalQwenImageEditPlus", widgets, inputs, outputs, x=x, y=y, w=400, h=EDIT_H)


def angles(g: Graph, x: int, y: int, *, horizontal: float, vertical: float, zoom: float, seed=42, steps=28) -> dict:
    widgets = [horizontal, vertical, zoom, "", "", 1.0, "auto", 1024, 1024, steps, 4.5, 1, seed, "fixed", False, True,
               "png", "default", False, 900, False, "fit model", "png", -1, "default"]
    inputs = [("image", "IMAGE"), ("connection", "FAL_CONNECTION")]
    outputs = [("images", "IMAGE"), ("seed", "INT"), ("info", "STRING"), ("mask", "MASK")]
    return g.node("FalQwenMultipleAngles", widgets, inputs, outputs, x=x, y=y, w=400, h=ANGLES_H)


def lora(g: Graph, url: str, scale: float, x: int, y: int, title: str) -> dict:
    return g.node("FalQwenLora", [url, scale], inputs=[("loras", "FAL_LORAS")], outputs=[("loras", "FAL_LORAS")],
                  x=x, y=y, w=420, h=110, title=title)


def save(g: Graph, prefix: str, x: int, y: int, h: int = 420) -> dict:
    return g.node("SaveImage", [prefix], inputs=[("images", "IMAGE")], x=x, y=y, w=400, h=h)


def preview_text(g: Graph, x: int, y: int) -> dict:
    return g.node("PreviewAny", [], inputs=[("source", "*")], x=x, y=y, w=400, h=180, title="request info")


def saved_with_info(g: Graph, source: dict, prefix: str, x: int) -> None:
    """An edit's images into a SaveImage, its info output into a preview below it (created after the
    edit's own input links, so node and link ids come out as before)."""
    out = save(g, prefix, x, 0)
    info = preview_text(g, x, 480)
    g.link(source, 0, out, "images")
    g.link(source, 2, info, "source")


def single_edit() -> Graph:
    g = Graph()
    src = load_image(g, INPUTS["person"], 0, 0)
    edit = qwen(g, "Change the jacket to bright red, keep the face and pose unchanged.", 360, 0)
    g.link(src, 0, edit, "image_1")
    saved_with_info(g, edit, "qwen_edit/single", 820)
    return g


def three_images() -> Graph:
    g = Graph()
    people = load_image(g, INPUTS["person"], 0, 0, h=300)
    car = load_image(g, INPUTS["car"], 0, 360, h=300)
    road = load_image(g, INPUTS["highway"], 0, 720, h=300)
    # Left on auto: the machine's settings (FAL_KEY, a gateway's URL and token, the fal panel's Keys) decide;
    # set mode and base_url here to send this one workflow elsewhere.
    connection = g.node("FalQwenConnection", ["auto", "", "", "auto", "default", "default"],
                        outputs=[("connection", "FAL_CONNECTION")], x=360, y=0, w=400, h=240)
    edit = qwen(g, "The woman from image 1 stands in front of the car from image 2 on the highway from "
                   "image 3. Photorealistic, evening light.", 360, 300, image_size="landscape_16_9")
    out = save(g, "qwen_edit/three_images", 820, 300)
    for node, name in ((people, "image_1"), (car, "image_2"), (road, "image_3")):
        g.link(node, 0, edit, name)
    g.link(connection, 0, edit, "connection")
    g.link(edit, 0, out, "images")
    return g


def batch_edit() -> Graph:
    g = Graph()
    frames = load_image(g, INPUTS["frames"], 0, 0)  # a two-frame (animated) PNG: LoadImage gives a batch of 2
    edit = qwen(g, "Turn this photo into a watercolour painting.", 360, 0,
                batch_mode="one edit per image_1 frame")
    out = save(g, "qwen_edit/batch", 820, 0)
    g.link(frames, 0, edit, "image_1")
    g.link(edit, 0, out, "images")
    return g


def mixed_with_core_nodes() -> Graph:
    g = Graph()
    src = load_image(g, INPUTS["highway"], 0, 0)
    edit = qwen(g, "Add light rain and wet reflections on the road.", 360, 0)
    scale = g.node("ImageScale", ["bicubic", 256, 256, "center"], inputs=[("image", "IMAGE")],
                   outputs=[("IMAGE", "IMAGE")], x=820, y=0, w=300, h=140)
    composite = g.node("ImageCompositeMasked", [16, 16, False],
                       inputs=[("destination", "IMAGE"), ("source", "IMAGE"), ("mask", "MASK")],
                       outputs=[("IMAGE", "IMAGE")], x=820, y=200, w=300, h=160)
    out = save(g, "qwen_edit/mixed", 1180, 0)
    upload = g.node("FalQwenUploadImage", [], inputs=[("image", "IMAGE"), ("connection", "FAL_CONNECTION")],
                    outputs=[("urls", "STRING")], x=0, y=420, w=300, h=80)
    from_url = g.node("FalQwenLoadImageFromUrl", ["", "pad"], inputs=[("urls", "STRING", True)],
                      outputs=[("image", "IMAGE"), ("mask", "MASK")], x=0, y=560, w=300, h=120,
                      title="Load uploaded input back (check)")
    check = save(g, "qwen_edit/uploaded_input", 0, 740, h=300)
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
    relight = lora(g, RELIGHT, 0.8, 0, 400, "fal LoRA: relight")
    next_scene = lora(g, NEXT_SCENE, 1.0, 0, 570, "fal LoRA: next scene")
    edit = qwen(g, "Next Scene: the camera pulls back to show the whole highway at sunset, warm low light from "
                   "the left.", 480, 0, model="qwen-edit-plus-lora", steps=28)
    g.link(src, 0, edit, "image_1")
    g.link(relight, 0, next_scene, "loras")
    g.link(next_scene, 0, edit, "loras")
    saved_with_info(g, edit, "qwen_edit/lora_chain", 940)
    return g


def edit_2511() -> Graph:
    g = Graph()
    person = load_image(g, INPUTS["person"], 0, 0)
    car = load_image(g, INPUTS["car"], 0, 400)
    edit = qwen(g, "The woman from image 1 leans on the car from image 2; keep her face and the car's colour.",
                360, 0, model="qwen-edit-2511", steps=28, guidance=4.5)
    g.link(person, 0, edit, "image_1")
    g.link(car, 0, edit, "image_2")
    saved_with_info(g, edit, "qwen_edit/2511", 820)
    return g


def edit_qwen_image_2() -> Graph:
    """Qwen-Image-2: no steps, guidance or acceleration (their widgets hide); fal may rewrite the prompt
    first (enable_prompt_expansion). Its inputs must be 384-5000 px a side: the person is 384 x 512."""
    g = Graph()
    person = load_image(g, INPUTS["person"], 0, 0)
    edit = qwen(g, "Give the woman a yellow raincoat and put her on a rainy city street at night.", 360, 0,
                model="qwen-image-2-edit", image_size="portrait_4_3", prompt_expansion=False)
    g.link(person, 0, edit, "image_1")
    saved_with_info(g, edit, "qwen_edit/qwen_image_2", 820)
    return g


def multiple_angles() -> Graph:
    g = Graph()
    car = load_image(g, INPUTS["car"], 0, 0)
    view = angles(g, 360, 0, horizontal=45.0, vertical=30.0, zoom=5.0)  # front-right, from a little above
    g.link(car, 0, view, "image")
    saved_with_info(g, view, "qwen_edit/multiple_angles", 820)
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


def two_frames(person: Image.Image, car: Image.Image) -> list[Image.Image]:
    """The person and the car on canvases of one size: the frames of an animated PNG."""
    frames = []
    for picture in (person, car):
        frame = Image.new("RGB", (512, 512), (230, 230, 224))
        fitted = picture.copy()
        fitted.thumbnail((480, 480))
        frame.paste(fitted, ((512 - fitted.width) // 2, (512 - fitted.height) // 2))
        frames.append(frame)
    return frames


EXAMPLES = {
    "qwen_edit_single": (single_edit, "One image, one edit: LoadImage → Qwen Image Edit Plus → Save."),
    "qwen_edit_three_images": (three_images, "Three references composed into one scene. The fal Connection "
                                             "node is on auto (this machine's key or gateway decides); set its "
                                             "mode and base_url to send this workflow elsewhere."),
    "qwen_edit_batch": (batch_edit, "A two-frame image (LoadImage makes a batch of its frames), one edit per "
                                    "frame, run concurrently."),
    "qwen_edit_mixed_core": (mixed_with_core_nodes, "Edit, then scale and composite the result with core "
                                                    "nodes; fal Upload Image → Load Image from URL shows the "
                                                    "hosted input round trip."),
    "qwen_edit_lora_chain": (lora_chain, "Two community LoRAs (relight, next scene) chained into the LoRA "
                                         "endpoint, qwen-edit-plus-lora."),
    "qwen_edit_2511": (edit_2511, "Two references on Qwen Image Edit 2511 (model qwen-edit-2511)."),
    "qwen_edit_qwen_image_2": (edit_qwen_image_2, "One image on Qwen Image 2 Edit (model qwen-image-2-edit): no "
                                                  "steps or guidance; prompt expansion off, so the prompt is "
                                                  "used as written."),
    "qwen_multiple_angles": (multiple_angles, "The car seen from its front-right and a little above: Qwen "
                                              "Multiple Angles moves the camera (no prompt: fal writes it from "
                                              "the camera values)."),
}


def main() -> None:
    (OUT / "inputs").mkdir(parents=True, exist_ok=True)
    inputs = sample_inputs()
    for key, image in inputs.items():
        image.save(OUT / "inputs" / INPUTS[key])
    first, second = two_frames(inputs["person"], inputs["car"])
    first.save(OUT / "inputs" / INPUTS["frames"], save_all=True, append_images=[second], duration=1000, loop=0)
    for name, (build, note) in EXAMPLES.items():
        build().dump(OUT / f"{name}.json", note + " Copy example_workflows/inputs/* into ComfyUI/input first.")
    print(f"wrote {len(EXAMPLES)} workflows and {len(INPUTS)} inputs to {OUT}")


if __name__ == "__main__":
    main()
