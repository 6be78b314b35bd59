"""fal's Platform API (api.fal.ai/v1): a user's request history by endpoint and unit prices. Uses base and wire; fal direct with a key only."""
