"""What every adapter's HTTP calls share: the capped body reader and the mapping
of HTTP statuses and aiohttp exceptions to our errors (``http``), and retries
within a call's deadline (``retry``, tenacity).

May import ``sources.errors`` only.
"""
