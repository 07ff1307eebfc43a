"""The web layer shared by every screen: home page, menu, gating, errors, OpenAPI."""
