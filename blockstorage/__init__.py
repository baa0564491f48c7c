"""A compact, Cinder-compatible block-storage service that reports its failures.

The reference user of usermessages: its API, scheduler and volume workers
talk over the bus, its backends are simulated pools with real capacity and
capability rules, and every failure point calls the usermessages SDK, so each
use case of the user-messages spec runs end to end.
"""
