"""Accounts, roles and sign-in."""
