"""One-time codes as a second factor: sent by SMS (``otp.sms``) or shown by an authenticator app
(``otp.authenticator_app``). Each proves possession of a device; with a password they reach the
advanced level (DESIGN.md, levels of assurance).

amr values per RFC 8176 §2: ``otp`` for any one-time password, plus ``sms`` when it came by text
message (so a relying party that distrusts SMS, NIST SP 800-63B §5.1.3.3 "restricted", can tell).
Neither is phishing-resistant: a code typed into a look-alike page can be relayed.
"""

from __future__ import annotations

from levels_of_assurance.authenticators import Proves
from levels_of_assurance.ladder import AMR, Level

SMS_CODE = Proves(
    method="sms", amr=(AMR.OTP, AMR.SMS), factor="possession", phishing_resistant=False, level=Level.ADVANCED
)
AUTHENTICATOR_APP = Proves(
    method="totp", amr=(AMR.OTP,), factor="possession", phishing_resistant=False, level=Level.ADVANCED
)
