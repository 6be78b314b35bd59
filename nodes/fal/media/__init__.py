"""Images in and out: IMAGE tensor codecs, input preparation (fit model, upload formats), storage uploads and data URIs, output downloads. Uses base, wire and models."""
