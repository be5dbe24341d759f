"""Spot credentials and personal data in a prompt so the router can keep it off cloud models.

Every pattern is compiled at import and anchored on a distinctive literal (a key prefix, "@",
"-----BEGIN") where possible, so a scan of a long prompt stays linear and cheap. The check is
deliberately eager: a false positive costs a local model, a false negative leaks a secret.
"""

from __future__ import annotations

import re
from typing import Final

# Vendor key formats: OpenAI/Anthropic, Stripe, GitHub, AWS, Slack, Google, GitLab, Hugging Face.
_API_KEY: Final = re.compile(
    r"\bsk-[A-Za-z0-9_-]{20,}"
    r"|\b[sr]k_(?:live|test)_[A-Za-z0-9]{16,}"
    r"|\bgh[pousr]_[A-Za-z0-9]{30,}|\bgithub_pat_[A-Za-z0-9_]{40,}"
    r"|\b(?:AKIA|ASIA)[0-9A-Z]{16}\b"
    r"|\bxox[abposr]-[A-Za-z0-9-]{10,}"
    r"|\bAIza[0-9A-Za-z_-]{35}"
    r"|\bglpat-[A-Za-z0-9_-]{20,}"
    r"|\bhf_[A-Za-z0-9]{30,}"
)
_TOKEN: Final = re.compile(
    r"\b[Bb]earer\s+[A-Za-z0-9._~+/=-]{16,}"
    r"|\beyJ[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}"
)
_PRIVATE_KEY: Final = re.compile(r"-----BEGIN [A-Z ]*PRIVATE KEY(?: BLOCK)?-----")
# A value assigned to something named like a secret; hex and base64 both qualify.
_LABELLED_SECRET: Final = re.compile(
    r"(?i:secret|token|api[_ -]?key|access[_ -]?key|signing[_ -]?key|private[_ -]?key)"
    r"\w*[\"']?\s*[:=]\s*[\"']?[A-Za-z0-9/+_.=-]{16,}"
)
# Long unlabelled runs that mix cases and digits look like base64 secrets, not words or hashes.
_OPAQUE_RUN: Final = re.compile(r"[A-Za-z0-9+/_-]{40,}")
# Lowercased text from here on.
_PASSWORD: Final = re.compile(
    r"(?:password|passwd|passcode|pwd|contraseña|mot de passe|passwort|kennwort|senha|密码|パスワード)"
    r"[\"']?\s*(?:[:=：]|\bis\b|\bes\b|\best\b|\bist\b|\bé\b)\s*[\"']?"
    r"(?!(?:str|string|none|null|true|false|undefined|required|input|request|getpass|os\.|env)\b)"
    r"(?![$<{*(\[])\S{3,}"
)
_EMAIL: Final = re.compile(r"[a-z0-9._%+-]+@[a-z0-9-]+(?:\.[a-z0-9-]+)*\.[a-z]{2,}")
_PHONE: Final = re.compile(
    r"(?<![\w+])\+\d{1,3}[ .-]?\(?\d{1,4}\)?(?:[ .-]?\d{2,4}){2,4}(?!\w)"
    r"|(?<![\w.])\(?\d{3}\)?[ .-]\d{3}[ .-]\d{4}(?![\w.])"
    r"|(?:phone|tel|mobile|teléfono|téléphone|telefon|telefone|电话|電話)\s*[:.]?\s*\+?\d[\d ().-]{6,}\d"
)
_CONFIDENTIAL: Final = re.compile(
    r"confidential|confidencial|confidentiel|vertraulich|confidenziale|机密|機密|社外秘"
)

KINDS: Final = (
    "api_key", "token", "private_key", "secret", "password", "email", "phone", "confidential",
)  # fmt: skip


def _opaque(text: str) -> bool:
    for m in _OPAQUE_RUN.finditer(text):
        run = m.group()
        if not run.isdigit() and not run.islower() and not run.isupper() and _has_digit(run):
            return True
    return False


def _has_digit(s: str) -> bool:
    return any(c.isdigit() for c in s)


def sensitive_kinds(text: str, user_text: str) -> tuple[str, ...]:
    """The kinds of sensitive content found, in KINDS order; empty when the prompt is clean.

    `text` is every message; `user_text` leaves out the operator's system prompt, where
    "confidential" usually describes the instructions themselves rather than the data.
    """
    low = text.lower()
    found = set()
    if _API_KEY.search(text):
        found.add("api_key")
    if _TOKEN.search(text):
        found.add("token")
    if "-----BEGIN" in text and _PRIVATE_KEY.search(text):
        found.add("private_key")
    if _LABELLED_SECRET.search(text) or _opaque(text):
        found.add("secret")
    if _PASSWORD.search(low):
        found.add("password")
    if "@" in text and _EMAIL.search(low):
        found.add("email")
    if _PHONE.search(low):
        found.add("phone")
    if _CONFIDENTIAL.search(user_text.lower()):
        found.add("confidential")
    return tuple(k for k in KINDS if k in found)
