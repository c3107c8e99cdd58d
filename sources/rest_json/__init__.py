"""The proprietary REST/JSON adapter (a French-language booking API): requests
(``adapter``) and the payloads read into our records (``payload``); ``sources check``'s
checks of an API (``check``, with ``raw`` answers and the records' ``tally``).

May import the contract and ``sources.transport``; never the pool, search or registry.
"""
