"""UI-format workflow (what ComfyUI saves) → API-format prompt (what /prompt runs).

Uses the running ComfyUI's /object_info, so it reads widgets exactly as the
frontend lays them out: one value per widget input in declaration order,
plus the hidden extra value of a "control after generate" widget and of
LoadImage's upload button. Leftover or missing values mean the workflow no
longer matches the node, and raise.
"""

from __future__ import annotations

WIDGET_TYPES = {"INT", "FLOAT", "STRING", "BOOLEAN", "COMBO"}


class WorkflowMismatch(AssertionError):
    pass


def _is_widget(kind, options: dict) -> bool:
    return isinstance(kind, list) or kind in WIDGET_TYPES


def _extra_widget_values(name: str, kind, options: dict) -> int:
    extra = 0
    if options.get("control_after_generate") or (kind == "INT" and name in ("seed", "noise_seed")):
        extra += 1
    if options.get("image_upload"):
        extra += 1
    return extra


def ui_to_api(workflow: dict, object_info: dict, *, saved_before_optional: bool = False) -> dict:
    """``saved_before_optional``: the workflow predates some optional widgets; their inputs are left
    out of the prompt, as in an API prompt saved back then (the node must take their absence)."""
    links = {link[0]: link for link in workflow["links"]}
    prompt = {}
    for node in workflow["nodes"]:
        if node.get("mode", 0) in (2, 4):  # muted or bypassed
            continue
        kind = node["type"]
        if kind not in object_info:
            raise WorkflowMismatch(f"node type {kind!r} (node {node['id']}) is missing from this ComfyUI")
        info = object_info[kind]["input"]
        order = list(info.get("required", {}).items()) + list(info.get("optional", {}).items())
        values = list(node.get("widgets_values") or [])
        linked = {i["name"]: links[i["link"]] for i in node.get("inputs", []) if i.get("link") is not None}
        inputs = {}
        optional = set(info.get("optional", {}))
        for name, spec in order:
            input_kind = spec[0]
            options = spec[1] if len(spec) > 1 and isinstance(spec[1], dict) else {}
            if _is_widget(input_kind, options):
                if not values and saved_before_optional and name in optional and name not in linked:
                    continue
                if not values:
                    raise WorkflowMismatch(f"{kind} node {node['id']}: no widget value left for {name!r}")
                value = values.pop(0)
                del values[:_extra_widget_values(name, input_kind, options)]
                inputs[name] = value
            if name in linked:
                link = linked[name]
                inputs[name] = [str(link[1]), link[2]]
        if values:
            raise WorkflowMismatch(f"{kind} node {node['id']}: {len(values)} widget values left over: {values}")
        prompt[str(node["id"])] = {"class_type": kind, "inputs": inputs}
    return prompt
