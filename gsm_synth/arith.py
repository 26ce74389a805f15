"""Numbers of a problem: arithmetic mod p (default 23, as iGSM) or plain integers (GSM-Infinite bounds).

Values are linear forms a*x + b in the problem's one unknown (reverse mode); forward problems only ever
have a == 0. A form is a plain tuple (a, b) so the generator's hot loop stays cheap.
"""
from __future__ import annotations

PLAIN_MAX = 1000  # GSM-Infinite rejects values above this (and below 0)
PLAIN_CONST = (1, 4)  # GSM-Infinite draws constants from 1..4

Form = tuple[int, int]


class Arithmetic:
    def __init__(self, modulus: int | None):
        if modulus is not None and (not isinstance(modulus, int) or modulus < 2 or not _is_prime(modulus)):
            raise ValueError(f"modulus must be a prime >= 2 or None (got {modulus!r})")
        self.modulus = modulus

    def norm(self, v: int) -> int:
        return v % self.modulus if self.modulus else v

    def form(self, a: int, b: int) -> Form:
        p = self.modulus
        return (a % p, b % p) if p else (a, b)

    def add(self, f: Form, g: Form) -> Form:
        return self.form(f[0] + g[0], f[1] + g[1])

    def sub(self, f: Form, g: Form) -> Form:
        return self.form(f[0] - g[0], f[1] - g[1])

    def mul(self, f: Form, g: Form) -> Form | None:
        """Product, or None when it is not linear (both factors depend on the unknown)."""
        if f[0] and g[0]:
            return None
        return self.form(f[0] * g[1] + g[0] * f[1], f[1] * g[1])

    def in_range(self, v: int) -> bool:
        return True if self.modulus else 0 <= v <= PLAIN_MAX

    def solve(self, f: Form, value: int) -> int | None:
        """x with f(x) == value, or None when f has no x or x is not a whole number."""
        a, b = f
        if a == 0:
            return None
        rhs = value - b
        if self.modulus:
            return (rhs * pow(a, -1, self.modulus)) % self.modulus
        return rhs // a if rhs % a == 0 else None

    def const_range(self, role: str) -> tuple[int, int]:
        """Inclusive range of a constant: a stated value, an addend or a factor."""
        if self.modulus:
            return {"value": (0, self.modulus - 1), "add": (1, self.modulus - 1), "mul": (2, self.modulus - 1)}[role]
        return {"value": PLAIN_CONST, "add": PLAIN_CONST, "mul": (2, PLAIN_CONST[1])}[role]


def format_form(f: Form, unknown: str) -> str:
    """Canonical text of a*x + b: '7', 'x', '3 * x + 5', '10 - 2 * x'."""
    a, b = f
    if a == 0:
        return str(b)
    term = unknown if abs(a) == 1 else f"{abs(a)} * {unknown}"
    if a > 0:
        return term if b == 0 else f"{term} + {b}" if b > 0 else f"{term} - {-b}"
    return f"{b} - {term}"


def _is_prime(n: int) -> bool:
    return n >= 2 and all(n % d for d in range(2, int(n**0.5) + 1))
