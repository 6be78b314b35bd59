"""Foundations every layer may use: typed errors and key redaction, the interruptible wait (deadline and Cancel), crash-safe file writes. Imports nothing of the pack."""
