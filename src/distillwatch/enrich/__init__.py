"""Per-exchange facts for detection, computed over whole Arrow arrays.

- ``capability``: which capability a prompt exercises (shipped linear model + long-horizon rule)
- ``cot``: does a prompt or system prompt ask for visible reasoning
- ``templates``: prompt -> template, stable template hash, MinHash / LSH near-duplicates
- ``network``: address prefix, datacenter / VPN / Tor flags, provider (CIDR lists, optional .mmdb)
- ``email``: domain, disposable-domain flag, local-part shape

See docs/enrichment.md.  Submodules are imported on use, so importing the
package costs nothing.
"""
