"""What the UI and scripts read about jobs: the job list (local history merged with fal's), one job, cancel, fetch (free), spend. Uses every layer below; ComfyUI's routes are thin over it."""
