"""Commissions: payees, contracts, the commission ledger, statements and Connect payouts."""
