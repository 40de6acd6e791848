"""Cryptography: the development PKI, S/MIME, DKIM, trust anchors and revocation."""
