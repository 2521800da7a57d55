"""Who may use the service: API keys, the page's sessions, and what each key has used."""
