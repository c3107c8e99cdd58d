"""The proprietary REST/JSON adapter (a French-language booking API): requests
(``adapter``) and the payloads read into our records (``payload``).

May import the contract and ``sources.transport``; never the pool, search or registry.
"""
