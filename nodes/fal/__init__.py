"""fal queue client, configuration, image codecs and the Qwen edit request model. Never imports ComfyUI."""
