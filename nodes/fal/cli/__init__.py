"""The fal-qwen-edit command and its --check: the top of the stack. Uses every layer below and, for --demo only, the fake fal server."""
