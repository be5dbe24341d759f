"""Which profile a request asks for, from its model name or the X-Router-Profile header.

``auto`` uses the header's profile or the active one; ``auto:eco`` and a bare profile
name (``eco``) name one directly. Any other name is an explicit model request.
"""

from __future__ import annotations

from collections.abc import Container

AUTO = "auto"


class UnknownProfile(LookupError):
    """``auto:NAME`` or the profile header named a profile that does not exist."""


def requested_profile(
    model: str,
    header: str | None,
    active: str,
    profiles: Container[str],
    model_names: Container[str],
) -> str | None:
    """The profile for an ``auto`` request, or None for an explicit model request.

    A configured model id or alias wins over a profile of the same name.
    """
    if model == AUTO:
        name = header or active
    elif model.startswith(AUTO + ":"):
        name = model[len(AUTO) + 1 :]
    elif model in profiles and model not in model_names:
        name = model
    else:
        return None
    if name not in profiles:
        raise UnknownProfile(name)
    return name
