"""Running Mekong as an appliance: consistent backups and restores (QOS-5), checking a data
directory (``mekong verify``) and upgrading the installed binary with rollback (QOS-3, PACS-7.2)."""
