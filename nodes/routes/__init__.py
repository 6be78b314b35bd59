"""The pack's HTTP routes on ComfyUI's server, each module thin over the plain-Python layer below it:
``panel`` (the fal panel's jobs, spend and balance), ``keys`` (the panel's Keys, answering only this
machine) and ``price`` (the nodes' price before Run), their JSON bodies read alike (``bodies``). None of them
submits a job."""
