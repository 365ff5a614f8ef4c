"""The FIX 4.4 edge: quickfix session settings, logon authentication, the order-entry
gateway (FIX <-> commands and events), market data and the security list.

The session layer (sequence numbers, heartbeats, resend, gap fill) is quickfix's; this
package configures it and speaks the venue's application messages over it.
"""
