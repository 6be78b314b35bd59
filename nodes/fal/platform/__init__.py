"""fal's Platform API (api.fal.ai/v1): a user's request history by endpoint and unit prices (fal direct with a key only); a gateway's balance calls. Uses base and wire."""
