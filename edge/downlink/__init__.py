"""Hub → edge: configuration bundles the hub signs, checked and applied here (PACS-13)."""
