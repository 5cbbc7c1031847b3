"""The audit trail (GEN-3, PACS-16): who did what to which patient's data, when, from where."""
