"""The directory: professionals, organisations, mailboxes, patients, guardians, trust list."""
