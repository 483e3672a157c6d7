"""Webhooks: JSON POSTs to user URLs when node events happen (docs/operations.md "Webhooks").

- :mod:`.template` and :mod:`.schedule`: pure rules (payload templates, the retry schedule);
- :mod:`.payload`: the event bodies; :mod:`.rules`: what a webhook may say (URL, headers);
- :mod:`.events`: writes deliveries in the transaction of the event that fires them;
- :mod:`.sender` and :mod:`.worker`: one signed POST, and the background worker that sends due
  deliveries and retries them.
"""
