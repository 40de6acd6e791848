"""How deep an XML document from outside may nest: one limit for every reader of the hub.

The DMP bridge's XDM and CDA reader (``dmp_bridge.xmlsafe``, 906 beyond it) and the
directory's whitelist import (``mss.directory.import_whitelist``) refuse deeper documents.
"""

MAX_XML_DEPTH = 256  # a CDA nests about 30 deep; the narrative renderer stops at 64 (cda_narrative)
