"""The HTTP side: the page, the JSON API, health and metrics."""
