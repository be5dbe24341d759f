"""Wire formats of upstream providers."""
