"""What fal's Qwen edit endpoints take, give and cost: the endpoint table, the request and result model, the pipeline's size rules, pricing. Uses base only."""
