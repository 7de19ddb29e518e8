"""The password authenticator: NIST SP 800-63B §5.1.1.2 policy and argon2id storage."""

from __future__ import annotations

import pytest
from argon2 import extract_parameters

from idp.errors import IdPError, LoginError
from levels_of_assurance.authenticators import password as pwd
from levels_of_assurance.authenticators.password import (
    DUMMY_HASH,
    PasswordHasher,
    PasswordPolicy,
    PasswordProblem,
    WeakPasswordError,
)
from levels_of_assurance.ladder import Level

FAST = {"memory_cost": 8192, "time_cost": 1, "parallelism": 1}


@pytest.fixture
def hasher() -> PasswordHasher:
    return PasswordHasher(**FAST)


def refused(password: str, *, context: tuple[str, ...] = (), policy: PasswordPolicy | None = None) -> str:
    with pytest.raises(WeakPasswordError) as info:
        (policy or PasswordPolicy()).check(password, context=context)
    assert isinstance(info.value, LoginError)
    return info.value.code


def test_proves_knowledge_not_phishing_resistant() -> None:
    assert pwd.PROVES.method == "pwd"
    assert pwd.PROVES.amr == ("pwd",)
    assert pwd.PROVES.factor == "knowledge"
    assert pwd.PROVES.phishing_resistant is False
    assert pwd.PROVES.level is Level.ADVANCED


@pytest.mark.parametrize("password", ["", "a", "Tr0ub4!", "       "])
def test_too_short(password: str) -> None:
    assert refused(password) == PasswordProblem.TOO_SHORT
    assert PasswordProblem.TOO_SHORT.value == "too_short"


def test_max_64_accepted_65_refused_by_default() -> None:
    base = "Kovinski mostovi čez Savo 7x "
    sixty_four = (base * 3)[:64]
    assert len(sixty_four) == 64
    PasswordPolicy().check(sixty_four)
    assert refused(sixty_four + "q") == "too_long"


def test_longer_maximum_is_configurable() -> None:
    long_one = "zelena jablana ob reki " * 5
    assert refused(long_one) == "too_long"
    PasswordPolicy(max_length=256).check(long_one)


@pytest.mark.parametrize(
    ("kwargs", "fragment"),
    [
        ({"min_length": 7}, "min_length"),
        ({"max_length": 63}, "max_length"),
        ({"min_length": 100, "max_length": 64}, "below"),
    ],
)
def test_policy_parameters_validated(kwargs: dict[str, int], fragment: str) -> None:
    with pytest.raises(ValueError, match=fragment):
        PasswordPolicy(**kwargs)


@pytest.mark.parametrize(
    "password",
    [
        "password",
        "PASSWORD1",
        "Password123",
        "qwerty123",
        "iloveyou",
        "Geslo123",
        "lozinka1",
        "ljubljana",
        "zagreb123",
        "sunshine1",
        "1qaz2wsx",
        "password2024",
    ],
)
def test_common_refused_case_insensitive(password: str) -> None:
    assert refused(password) == "common"


def test_blocklist_shipped_and_normalised() -> None:
    listed = pwd.common_passwords()
    assert 9000 <= len(listed) <= 11000
    assert all(len(p) >= 8 and p == p.lower() and not p.startswith("#") for p in listed)
    assert {"password", "geslo123", "slovenija", "hrvatska1", "beograd1", "maribor1"} <= listed
    assert pwd.common_passwords() is listed  # loaded once


@pytest.mark.parametrize(
    "password",
    [
        "aaaaaaaa",
        "AAAAAAAAAAAA",
        "12345678",
        "87654321",
        "abcdefgh",
        "HGFEDCBA",
        "qwertyui",
        "asdfghjkl",
        "zxcvbnm,./",
        "qwertzuiopš",
        "poiuytre",
        "abababab",
        "abcabcabcabc",
        "1234567890",
        "0987654321",
        "abcdabcd",
    ],
)
def test_repetitive_or_sequential_refused(password: str) -> None:
    assert refused(password) == "repetitive"


@pytest.mark.parametrize(
    ("password", "context"),
    [
        ("novak-mostovi-77", ("ana.novak@example.si",)),
        ("Mostovi-ANA.NOVAK", ("ana.novak@example.si",)),
        ("xx-Kovačič-xx", ("Kovačič",)),
        ("xx-KOVAČIČ-xx", ("kovačič",)),
        ("Marija je pomlad", ("Ana Marija", "Novak")),
        ("brzi-jnovak42-konj", ("jnovak42",)),
    ],
)
def test_identifiers_refused(password: str, context: tuple[str, ...]) -> None:
    assert refused(password, context=context) == "contains_identifier"


def test_short_identifiers_ignored() -> None:
    # "ana" and "ivo" are under 4 characters: too common inside words to refuse.
    PasswordPolicy().check("banana hranilnica ivo", context=("ana@example.si", "Ivo"))


def test_long_slovenian_passphrase_with_spaces_accepted() -> None:
    PasswordPolicy().check(
        "Včeraj je na Šmarni gori snežilo, danes pa sije sonce",
        context=("ana.novak@example.si", "Ana", "Novak", "anovak"),
    )


def test_no_composition_rules() -> None:
    PasswordPolicy().check("zelenakrava")  # lowercase letters only
    PasswordPolicy().check("čžšđćČŽŠĐĆ")


def test_nfkc_full_width_digits_are_the_ascii_run() -> None:
    full_width_digits = "\uff11\uff12\uff13\uff14\uff15\uff16\uff17\uff18"
    assert refused(full_width_digits) == "repetitive"
    full_width_password = "".join(chr(ord(c) + 0xFEE0) for c in "password")
    assert full_width_password != "password"
    assert refused(full_width_password) == "common"


def test_nfkc_ligature_counts_after_normalising() -> None:
    seven_code_points = "\ufb01nch-ok"  # "ﬁ" ligature: 7 code points, "finch-ok" after NFKC
    assert len(seven_code_points) == 7
    PasswordPolicy().check(seven_code_points)
    assert refused("\ufb01nch-o") == "too_short"


def test_hash_round_trip(hasher: PasswordHasher) -> None:
    stored = hasher.hash("Včeraj je na Šmarni gori snežilo")
    assert stored.startswith("$argon2id$")
    hasher.verify(stored, "Včeraj je na Šmarni gori snežilo")


def test_wrong_password_raises_with_code(hasher: PasswordHasher) -> None:
    stored = hasher.hash("correct horse battery staple")
    with pytest.raises(LoginError) as info:
        hasher.verify(stored, "correct horse battery stapler")
    assert info.value.code == "wrong_password"


def test_hash_and_verify_normalise_alike(hasher: PasswordHasher) -> None:
    stored = hasher.hash("\ufb01nch \uff11\uff12\uff13 cafe\u0301")
    hasher.verify(stored, "finch 123 café")
    stored = hasher.hash("finch 123 café")
    hasher.verify(stored, "\ufb01nch \uff11\uff12\uff13 cafe\u0301")


def test_rehash_when_parameters_change(hasher: PasswordHasher) -> None:
    stored = hasher.hash("correct horse battery staple")
    assert hasher.needs_rehash(stored) is False
    assert PasswordHasher(memory_cost=8192, time_cost=2, parallelism=1).needs_rehash(stored) is True
    assert PasswordHasher(memory_cost=9216, time_cost=1, parallelism=1).needs_rehash(stored) is True
    assert PasswordHasher(memory_cost=8192, time_cost=1, parallelism=2).needs_rehash(stored) is True


def test_owasp_defaults() -> None:
    default = PasswordHasher()
    stored = default.hash("correct horse battery staple")
    params = extract_parameters(stored)
    assert (params.memory_cost, params.time_cost, params.parallelism) == (19456, 2, 1)
    assert stored.startswith("$argon2id$v=19$m=19456,t=2,p=1$")
    default.verify(stored, "correct horse battery staple")
    assert default.needs_rehash(stored) is False


@pytest.mark.parametrize(
    ("kwargs", "fragment"),
    [
        ({"memory_cost": 8191}, "memory_cost"),
        ({"time_cost": 0}, "time_cost"),
        ({"parallelism": 0}, "parallelism"),
    ],
)
def test_hasher_parameters_validated(kwargs: dict[str, int], fragment: str) -> None:
    with pytest.raises(ValueError, match=fragment):
        PasswordHasher(**kwargs)


def test_dummy_hash_has_default_parameters() -> None:
    params = extract_parameters(DUMMY_HASH)
    assert (params.memory_cost, params.time_cost, params.parallelism) == (19456, 2, 1)
    assert PasswordHasher().needs_rehash(DUMMY_HASH) is False


def test_verify_dummy_raises_wrong_password() -> None:
    with pytest.raises(LoginError) as info:
        pwd.verify_dummy("anything at all")
    assert info.value.code == "wrong_password"


def test_verify_dummy_with_own_parameters_raises(hasher: PasswordHasher) -> None:
    with pytest.raises(LoginError) as info:
        hasher.verify_dummy("anything at all")
    assert info.value.code == "wrong_password"


def test_corrupt_stored_hash_is_not_a_wrong_password(hasher: PasswordHasher) -> None:
    with pytest.raises(IdPError) as info:
        hasher.verify("not a hash", "whatever it is")
    assert not isinstance(info.value, LoginError)
