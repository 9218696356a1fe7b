"""Files: labelled results on disk, atomic writes, provenance, figures and tables."""
