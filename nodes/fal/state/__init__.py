"""State on disk, shared by ComfyUI and the CLI under locks: the job journal, the result cache, the spending ledger. Uses base and queue (a job's handle)."""
