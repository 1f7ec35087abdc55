"""`collector prepare`: payload files made from datasets (sources, templates, filters, provenance)."""
