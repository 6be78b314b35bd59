"""fal's queue: submit, status, result and cancel, the ways of waiting and their memory, what an answer says about a job, batch mode's job slots. Uses base and wire."""
