"""Small end-to-end examples built only from the engine's public API."""
