"""Handing messages to people: mail (:mod:`idp.delivery.mail`) and, later, SMS.

Every backend is chosen at start-up from a setting (``IDP_EMAIL_BACKEND``, ``IDP_SMS_BACKEND``)
and passed explicitly to the code that sends; the file backends write an outbox that tests and
developers read like a mailbox.
"""
