"""The message store (UIDs, flags, folders, mod-sequences) and the IMAP server."""
