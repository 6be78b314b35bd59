"""ComfyUI entry point of the fal Qwen-Image-Edit-Plus node pack.

ComfyUI imports this folder by path. Everything under ``nodes/fal`` and
``nodes/fakefal`` is plain Python that never imports ComfyUI (the CLI and the
tests use it directly), so ComfyUI's API is only imported lazily, here.
``web/`` holds the frontend extension (plain ES modules, no build step).
"""

WEB_DIRECTORY = "./web"


async def comfy_entrypoint():
    from .nodes.extension import FalQwenEditExtension, register_routes

    register_routes()
    return FalQwenEditExtension()
