"""Edge storage reclamation (issue 6 item 4, PACS-8.2/8.3, PACS-12): studies the hub confirmed
by digest are freed by rule, and fetched back from the hub when someone asks for them."""
