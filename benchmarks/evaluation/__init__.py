"""What a representation is worth: probes, localization, metrics, ``ess bench`` (evaluate a run),
``--compare`` (the ESS table over methods and seeds) and the plan of ``ess demo``."""
