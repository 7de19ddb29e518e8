"""One-time codes: TOTP, SMS codes, their storage, attempts and replay protection.

Reserved by DESIGN.md for the advanced level of assurance; its implementation is tracked in its
own issue and nothing here is wired into the application yet.
"""
