"""The domain: a conversion's record, its rules, its failures and the links it takes. Pure:
imports nothing of ytmp3."""
