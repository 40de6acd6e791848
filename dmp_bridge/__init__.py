"""DMP bridge: IHE XDM and CDA R2 parsing (this layer), filing and consent-checked reading.

The parsing layer has no database or network dependency:

- :mod:`dmp_bridge.safezip` reads a zip archive into memory within hard limits;
- :mod:`dmp_bridge.xdm` reads an IHE XDM package (METADATA.XML + documents);
- :mod:`dmp_bridge.cda` reads a CDA R2 header and renders its narrative;
- :mod:`dmp_bridge.errors` holds the MSSanté integration error codes 900-906.
"""

from dmp_bridge.errors import XdmError

__all__ = ["XdmError"]
