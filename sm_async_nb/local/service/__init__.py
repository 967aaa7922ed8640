"""The emulated AWS service: runtime state (``models``), wire (``responses``), server, worker,
model hosting, scaling, faults, model logs."""
